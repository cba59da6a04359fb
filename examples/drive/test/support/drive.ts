/**
 * The fixture every suite uses: a test issuer and the drive example started in-process on real
 * HTTP (port 0), callers with their own keys and tokens, readers of a drive's state (through the
 * drive's own tools, as a legitimate caller) to prove that a refusal had no side effect, and the
 * challenge assertions DESIGN.md's table pins.
 */
import { expect } from 'vitest'
import type { AuditSink } from '@callproof/server'
import { startDrive } from '../../src/index.js'
import type { SdkLine, StartDriveOptions } from '../../src/index.js'
import { ACR_MFA, startIssuer } from './issuer.js'
import type { MintOptions, TestIssuer } from './issuer.js'
import { dpopChallenge } from './http.js'
import type { Challenge, HttpAnswer } from './http.js'
import { McpCaller, toolText } from './mcp.js'
import { newCallerKey } from './proof.js'
import type { CallerKey } from './proof.js'

/** A file entry as list_files returns it. */
export interface FileEntry {
  path: string
  size: number
  sharedWith: string[]
}

/** What a suite gets from `startFixture`. */
export interface Fixture {
  issuer: TestIssuer
  /** The MCP endpoint URL. */
  url: string
  origin: string
  resource: string
  /** The RFC 9728 document URL every challenge must name. */
  metadataUrl: string
  /** A new caller with its own key; `token` options are passed to the issuer. */
  caller(token?: Partial<MintOptions>, key?: CallerKey): Promise<McpCaller>
  /** Mint a token for an existing key. */
  token(key: CallerKey, options?: Partial<MintOptions>): Promise<string>
  /** The subject's files, read through list_files by a fresh legitimate caller. */
  files(sub: string): Promise<FileEntry[]>
  /** One file's entry, or undefined when it does not exist. */
  file(sub: string, path: string): Promise<FileEntry | undefined>
  /** read_file as a fresh legitimate caller of `sub`. */
  read(sub: string, path: string): Promise<string>
  /** write_file as a fresh legitimate caller of `sub` (test setup). */
  write(sub: string, path: string, content: string): Promise<void>
  close(): Promise<void>
}

/**
 * The MCP SDK line the drive runs on in this run: every suite runs on both (vitest.config.ts at
 * the root runs this project a second time with `CALLPROOF_SDK=v2`).
 */
export const SDK_LINE: SdkLine = process.env['CALLPROOF_SDK'] === 'v2' ? 'v2' : 'v1'

/** Start an issuer and a drive that trusts it. */
export async function startFixture(
  options: { nonce?: boolean; audit?: AuditSink; stores?: StartDriveOptions['stores'] } = {},
): Promise<Fixture> {
  const issuer = await startIssuer()
  const drive = await startDrive({
    port: 0,
    host: '127.0.0.1',
    issuer: issuer.url,
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    ...(options.audit === undefined ? {} : { audit: options.audit }),
    ...(options.stores === undefined ? {} : { stores: options.stores }),
    sdk: SDK_LINE,
  })
  issuer.resource = drive.resource
  const metadataUrl = `${drive.origin}/.well-known/oauth-protected-resource/mcp`
  const endpoint = { url: drive.url, resource: drive.resource }

  const token = (key: CallerKey, o: Partial<MintOptions> = {}) =>
    issuer.mint({ jkt: key.jkt, ...o })
  const caller = async (o: Partial<MintOptions> = {}, key?: CallerKey) => {
    const k = key ?? (await newCallerKey())
    return new McpCaller(endpoint, k, await token(k, o))
  }
  const files = async (sub: string) => {
    const c = await caller({ sub })
    return JSON.parse(toolText(await c.callTool('list_files', {}))) as FileEntry[]
  }
  return {
    issuer,
    url: drive.url,
    origin: drive.origin,
    resource: drive.resource,
    metadataUrl,
    caller,
    token,
    files,
    file: async (sub, path) => (await files(sub)).find((f) => f.path === path),
    read: async (sub, path) =>
      toolText(await (await caller({ sub })).callTool('read_file', { path })),
    write: async (sub, path, content) => {
      const c = await caller({ sub })
      toolText(await c.callTool('write_file', { path, content }))
    },
    close: async () => {
      await drive.close()
      await issuer.close()
    },
  }
}

/** What a refusal must look like. */
export interface Expected {
  status: number
  /** The `error` parameter; `null` asserts there is none. */
  error: string | null
  /** Other parameters that must be present with exactly this value. */
  params?: Record<string, string>
  /** The JSON body's `code` (core's CallproofErrorCode), when the test pins the reason. */
  code?: string
  /** Require `algs` (docs/protocol.md §11.1: REQUIRED on every 401 challenge). Default: on 401. */
  algs?: boolean
}

/**
 * Assert status and the DPoP challenge: scheme, `error`, `resource_metadata` (always), `algs`
 * where the table requires it. Returns the parsed challenge for further checks.
 */
export function expectChallenge(fx: Fixture, answer: HttpAnswer, expected: Expected): Challenge {
  const where = `${answer.status} ${answer.headers.get('www-authenticate') ?? '(no challenge)'} ${answer.text.slice(0, 300)}`
  expect(answer.status, where).toBe(expected.status)
  const challenge = dpopChallenge(answer)
  expect(challenge, `DPoP challenge in: ${where}`).toBeDefined()
  const params = challenge!.params
  if (expected.error === null) expect(params.error, where).toBeUndefined()
  else expect(params.error, where).toBe(expected.error)
  expect(params.resource_metadata, where).toBe(fx.metadataUrl)
  const needsAlgs = expected.algs ?? expected.status === 401
  if (needsAlgs) {
    expect(params.algs, where).toBeDefined()
    expect(params.algs!.split(' ')).toContain('ES256')
  }
  for (const [name, value] of Object.entries(expected.params ?? {})) {
    expect(params[name], `${name} in ${where}`).toBe(value)
  }
  // The JSON body repeats the error (docs/protocol.md §11.2); `code` pins WHY it was refused, so
  // a refusal for another reason than the one under test does not pass silently.
  const body = answer.json as { error?: string; code?: string } | undefined
  if (expected.error !== null) expect(body?.error, where).toBe(expected.error)
  if (expected.code !== undefined) expect(body?.code, where).toBe(expected.code)
  // A refusal is an HTTP refusal: no JSON-RPC result may ride along with it.
  expect(answer.messages.some((m) => 'result' in m)).toBe(false)
  return challenge!
}

/** Shorthands for the table's rows. */
export const invalidToken: Expected = {
  status: 401,
  error: 'invalid_token',
  code: 'ERR_INVALID_TOKEN',
}
export const invalidProof: Expected = {
  status: 401,
  error: 'invalid_dpop_proof',
  code: 'ERR_INVALID_PROOF',
}
export const bindingMismatch: Expected = {
  status: 401,
  error: 'invalid_dpop_proof',
  code: 'ERR_BINDING_MISMATCH',
}
export const replayed: Expected = { status: 401, error: 'invalid_dpop_proof', code: 'ERR_REPLAY' }
export const mfaRequired = (maxAge = false): Expected => ({
  status: 401,
  error: 'insufficient_user_authentication',
  code: 'ERR_INSUFFICIENT_USER_AUTHENTICATION',
  params: maxAge ? { acr_values: ACR_MFA, max_age: '300' } : { acr_values: ACR_MFA },
})

/** A unique file path for one test. */
export function uniquePath(label: string): string {
  return `tests/${label}-${crypto.randomUUID().slice(0, 8)}.txt`
}
