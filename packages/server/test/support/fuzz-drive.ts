/**
 * The fuzz harness: the drive example's app (its real tools and policies behind the real callproof
 * middleware) run in-process through Hono's `app.request`, trusting a real test issuer on loopback
 * HTTP. Instrumented twice, independently, so "a tool ran" cannot go unnoticed:
 *
 * - every operation on the drive's files (list/read/write/delete/share) is logged by a spy
 *   subclass of the drive's storage;
 * - every `allowed` decision of the middleware is logged by an audit sink (this also sees tools
 *   such as `whoami` that never touch the files, and non-tool messages).
 *
 * A request the fuzzer broke must add nothing to either log.
 */
import { expect } from 'vitest'
import type { Hono } from 'hono'
import { MemoryReplayStore, parseWwwAuthenticate } from '@callproof/core'
import type { McpBinding, NonceSource } from '@callproof/core'
import { MemorySessionStore, memorySink } from '../../src/index.js'
import type { AuditEvent, CallproofEnv } from '../../src/index.js'
import { Drives, createDriveApp } from '../../../../examples/drive/src/index.js'
import { ACR_MFA, startIssuer } from '../../../../examples/drive/test/support/issuer.js'
import type { MintOptions, TestIssuer } from '../../../../examples/drive/test/support/issuer.js'
import { parseChallenges, readAnswer } from '../../../../examples/drive/test/support/http.js'
import type { HttpAnswer } from '../../../../examples/drive/test/support/http.js'
import { base64url } from 'jose'
import {
  bindingOf,
  newCallerKey,
  sha256b64u,
} from '../../../../examples/drive/test/support/proof.js'
import type { CallerKey } from '../../../../examples/drive/test/support/proof.js'

/** One operation the drive's storage performed. */
export interface DriveOp {
  op: 'list' | 'read' | 'write' | 'delete' | 'share'
  sub: string
  path?: string
}

/** The drive's storage with every operation logged. */
export class SpyDrives extends Drives {
  readonly ops: DriveOp[] = []
  override list(sub: string) {
    this.ops.push({ op: 'list', sub })
    return super.list(sub)
  }
  override read(sub: string, path: string) {
    this.ops.push({ op: 'read', sub, path })
    return super.read(sub, path)
  }
  override write(sub: string, path: string, content: string) {
    this.ops.push({ op: 'write', sub, path })
    return super.write(sub, path, content)
  }
  override delete(sub: string, path: string) {
    this.ops.push({ op: 'delete', sub, path })
    return super.delete(sub, path)
  }
  override share(sub: string, path: string, withUser: string) {
    this.ops.push({ op: 'share', sub, path })
    return super.share(sub, path, withUser)
  }
}

/** A request as the fuzzer builds it. */
export interface FuzzRequest {
  method?: string
  headers: Record<string, string | string[]>
  body?: string | Uint8Array
}

/** What one request did. */
export interface FuzzOutcome {
  answer: HttpAnswer
  /** Drive operations performed while it was served. */
  ops: DriveOp[]
  /** `allowed` audit decisions made while it was served. */
  allowed: AuditEvent[]
}

/** Header and claims of a proof to sign (values `undefined` are dropped). */
export interface ProofParts {
  header: Record<string, unknown>
  claims: Record<string, unknown>
}

/** The running harness. */
export interface FuzzDrive {
  app: Hono<CallproofEnv>
  issuer: TestIssuer
  drives: SpyDrives
  /** `http://127.0.0.1:9/mcp`: never listened on; requests go through `app.request`. */
  resource: string
  metadataUrl: string
  /** The honest caller: its key and a token with every scope, MFA, a fresh login. */
  key: CallerKey
  token: string
  /** A second key (to sign proofs the token is not bound to). */
  otherKey: CallerKey
  /** The latest `DPoP-Nonce` the server sent (put into honest proofs), when nonces are on. */
  nonce: string | undefined
  /**
   * The honest caller's `Mcp-Session-Id`, opened by `initialize` at start. Honest requests name
   * it, as the SDK client does, so they stay honest on a server with `sessions.requireSessionId`
   * (400 after authentication for a POST other than `initialize` without one).
   */
  session: string
  mint(options?: Partial<MintOptions>): Promise<string>
  /** The honest proof parts for a message (or none, for GET/DELETE) and a token. */
  proofParts(message: unknown, token?: string, key?: CallerKey): Promise<ProofParts>
  /** Sign proof parts with `key` (default the honest key). */
  sign(parts: ProofParts, key?: CallerKey): Promise<string>
  /**
   * Honest headers for a body: the token, a fresh proof bound to `message`, the JSON content type
   * and accept list, and the honest caller's session (`session: null` leaves it out).
   */
  honestHeaders(
    message: unknown,
    options?: { token?: string; session?: string | null },
  ): Promise<Record<string, string>>
  /** Send one request and report what it did. */
  send(request: FuzzRequest): Promise<FuzzOutcome>
  close(): Promise<void>
}

/**
 * fast-check parameters that replay a reported failure: `FUZZ_SEED=<seed> [FUZZ_PATH=<path>]
 * npx vitest run --project @callproof/server test/fuzz -t '<test name>'` (fast-check prints both
 * on failure). Unset (CI), every run draws a fresh seed: that is what finds new cases.
 */
export const fuzzReplay: { seed?: number; path?: string } =
  process.env.FUZZ_SEED === undefined
    ? {}
    : {
        seed: Number(process.env.FUZZ_SEED),
        ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
      }

export const FUZZ_RESOURCE = 'http://127.0.0.1:9/mcp'
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'fuzz-harness', version: '0' },
  },
}

const ACCEPT = 'application/json, text/event-stream'

/** Start the issuer and build the drive app over spy storage (`nonce`: require DPoP nonces). */
export async function startFuzzDrive(options: { nonce?: NonceSource } = {}): Promise<FuzzDrive> {
  const issuer = await startIssuer()
  issuer.resource = FUZZ_RESOURCE
  const drives = new SpyDrives()
  const audit = memorySink()
  const app = createDriveApp({
    issuer: issuer.url,
    resource: FUZZ_RESOURCE,
    drives,
    audit,
    ...(options.nonce !== undefined ? { nonce: options.nonce } : {}),
    // One subject sends thousands of requests a second here, to reach every check; its per-caller
    // replay quota (2 000 in the window, examples/drive/test/flood.test.ts) would answer first.
    stores: {
      replay: new MemoryReplayStore({
        maxEntriesPerSubject: 100_000,
        maxEntriesPerClient: 100_000,
      }),
      sessions: new MemorySessionStore(),
    },
  })
  const key = await newCallerKey()
  const otherKey = await newCallerKey()
  const mint = (o: Partial<MintOptions> = {}) =>
    issuer.mint({ jkt: key.jkt, acr: ACR_MFA, authAgo: 10, expiresIn: 3600, ...o })
  const token = await mint()

  const proofParts = async (message: unknown, t = token, k = key): Promise<ProofParts> => {
    let mcp: McpBinding | undefined
    if (message !== undefined) mcp = await bindingOf(message as Record<string, unknown>)
    return {
      header: { typ: 'dpop+jwt', alg: 'ES256', jwk: k.publicJwk },
      claims: {
        jti: crypto.randomUUID(),
        htm: 'POST',
        htu: FUZZ_RESOURCE,
        iat: Math.floor(Date.now() / 1000),
        ath: await sha256b64u(t),
        nonce: fx.nonce,
        mcp,
      },
    }
  }
  // Signed with ES256 whatever the header's `alg` says, so a proof can lie about its algorithm.
  const sign = (parts: ProofParts, k = key) => signEs256(parts, k.keyPair.privateKey)

  const send = async (request: FuzzRequest): Promise<FuzzOutcome> => {
    const opsBefore = drives.ops.length
    const eventsBefore = audit.events.length
    const headers = new Headers()
    for (const [name, value] of Object.entries(request.headers)) {
      for (const v of [value].flat()) headers.append(name, v)
    }
    const method = request.method ?? 'POST'
    const init: RequestInit = { method, headers }
    if (request.body !== undefined && method !== 'GET' && method !== 'HEAD') {
      init.body = request.body as BodyInit
    }
    const response = await app.request(FUZZ_RESOURCE, init)
    const answer = await readAnswer(response)
    const nonce = answer.headers.get('dpop-nonce')
    if (nonce !== null) fx.nonce = nonce
    return {
      answer,
      ops: drives.ops.slice(opsBefore),
      allowed: audit.events.slice(eventsBefore).filter((e) => e.decision === 'allowed'),
    }
  }

  const fx: FuzzDrive = {
    app,
    issuer,
    drives,
    resource: FUZZ_RESOURCE,
    metadataUrl: 'http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp',
    key,
    token,
    otherKey,
    nonce: undefined,
    mint,
    proofParts,
    sign,
    session: '',
    async honestHeaders(message, options = {}) {
      const t = options.token ?? token
      const session = options.session === undefined ? fx.session : options.session
      return {
        authorization: `DPoP ${t}`,
        dpop: await sign(await proofParts(message, t)),
        'content-type': 'application/json',
        accept: ACCEPT,
        ...(session ? { 'mcp-session-id': session } : {}),
      }
    },
    send,
    close: () => issuer.close(),
  }
  // Open the honest caller's session; with nonces the first answer only hands one out.
  for (let attempt = 0; attempt < 2 && fx.session === ''; attempt++) {
    const opened = await send({
      headers: await fx.honestHeaders(INITIALIZE, { session: null }),
      body: JSON.stringify(INITIALIZE),
    })
    fx.session = opened.answer.headers.get('mcp-session-id') ?? ''
  }
  if (fx.session === '') throw new Error('fuzz harness: initialize opened no session')
  return fx
}

/** A JWS over exactly these header and claims (`undefined` members dropped), signed ES256. */
export async function signEs256(parts: ProofParts, privateKey: CryptoKey): Promise<string> {
  const enc = (v: Record<string, unknown>) =>
    base64url.encode(
      JSON.stringify(Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined))),
    )
  const input = `${enc(parts.header)}.${enc(parts.claims)}`
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    privateKey,
    new TextEncoder().encode(input),
  )
  return `${input}.${base64url.encode(new Uint8Array(signature))}`
}

/** Statuses the server may answer a fuzzed request with; anything else (500, 503, …) is a bug. */
export const ALLOWED_STATUSES = new Set([200, 202, 400, 401, 403, 404, 405, 406, 413, 415])

/** Challenge `error` codes the protocol defines (DESIGN.md's table). */
const CHALLENGE_ERRORS = new Set([
  'invalid_token',
  'invalid_dpop_proof',
  'use_dpop_nonce',
  'insufficient_scope',
  'insufficient_user_authentication',
  'insufficient_authorization_details',
  'access_denied',
])

/**
 * The invariants every answer must keep, whatever was sent: an allowed status; on 401 (and on
 * 403 except the Origin/Host refusal, which carries none) a `DPoP` challenge that parses the same
 * way with an independent parser and with core's, names the metadata document, and, when it has
 * an `error`, a protocol one.
 */
export function expectWellFormed(fx: FuzzDrive, answer: HttpAnswer, label: string): void {
  const where = `${label}: ${answer.status} ${answer.headers.get('www-authenticate') ?? '(no challenge)'} ${answer.text.slice(0, 300)}`
  expect(ALLOWED_STATUSES.has(answer.status), where).toBe(true)
  const code = (answer.json as { code?: unknown } | undefined)?.code
  const needsChallenge =
    answer.status === 401 || (answer.status === 403 && code !== 'ERR_ORIGIN_NOT_ALLOWED')
  if (!needsChallenge) return
  const header = answer.headers.get('www-authenticate')
  expect(header, where).not.toBeNull()
  const ours = parseChallenges(header!).find((c) => c.scheme.toLowerCase() === 'dpop')
  expect(ours, where).toBeDefined()
  const core = parseWwwAuthenticate(header!).find((c) => c.scheme.toLowerCase() === 'dpop')
  expect(core?.params, where).toEqual(ours!.params)
  expect(ours!.params.resource_metadata, where).toBe(fx.metadataUrl)
  const error = ours!.params.error
  if (answer.status === 403) expect(error, where).toBeDefined()
  if (error !== undefined) expect(CHALLENGE_ERRORS.has(error), where).toBe(true)
}

/** A request that must have been refused: nothing ran, nothing was allowed, no result. */
export function expectNothingRan(outcome: FuzzOutcome, label: string): void {
  const where = `${label}: ${outcome.answer.status} ${outcome.answer.text.slice(0, 300)}`
  expect(outcome.ops, where).toEqual([])
  expect(outcome.allowed, where).toEqual([])
  expect(outcome.answer.status, where).toBeGreaterThanOrEqual(400)
  expect(
    outcome.answer.messages.some((m) => 'result' in m),
    where,
  ).toBe(false)
}
