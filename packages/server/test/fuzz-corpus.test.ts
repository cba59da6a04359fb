/**
 * Replays every case in test/fuzz-corpus/*.json on every run: past fuzz failures and hand-picked
 * nasty inputs, through the same harness and the same invariants as fuzz.test.ts.
 *
 * A case is a recipe rather than a recorded request, because tokens and proofs expire: the
 * token and the proof are minted fresh and then changed exactly as the case says.
 *
 * ```jsonc
 * {
 *   "name": "…", "why": "…",
 *   "message": { … },            // the JSON-RPC message the proof binds (and the default body)
 *   "body": "…",                 // optional raw body text, or { "$padTo": n } for n bytes
 *   "headers": { "dpop": ["${proof}", "${proof}"], "origin": "null", "x": null },  // null deletes
 *   "token": { "typ", "kid", "aud", "claims", "hmac" },            // optional token changes
 *   "proof": { "claims", "header", "jwk", "mcpExtra", "unsigned" }, // optional proof changes
 *   "expect": { "fate": "refuse" | "succeed" | "either", "status": [401], "code": "ERR_…" }
 * }
 * ```
 *
 * In `claims`, `{ "$now": -120 }` is the current time plus that many seconds; `null` deletes.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base64url } from 'jose'
import { expectNothingRan, expectWellFormed, startFuzzDrive } from './support/fuzz-drive.js'
import type { FuzzDrive } from './support/fuzz-drive.js'

interface CorpusCase {
  name: string
  why: string
  message: Record<string, unknown>
  body?: string | { $padTo: number }
  headers?: Record<string, string | string[] | null>
  token?: {
    typ?: string
    kid?: string
    aud?: string | string[]
    claims?: Record<string, unknown>
    hmac?: boolean
  }
  proof?: {
    claims?: Record<string, unknown>
    header?: Record<string, unknown>
    jwk?: Record<string, unknown>
    mcpExtra?: Record<string, unknown>
    unsigned?: boolean
  }
  expect: { fate: 'refuse' | 'succeed' | 'either'; status?: number[]; code?: string }
}

const DIR = fileURLToPath(new URL('./fuzz-corpus/', import.meta.url))
const cases: CorpusCase[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(`${DIR}${f}`, 'utf8')) as CorpusCase)

/** `{ "$now": n }` → now + n seconds; `null` → delete (returned as undefined). */
function resolve(value: unknown): unknown {
  if (value === null) return undefined
  if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).join() === '$now') {
    return Math.floor(Date.now() / 1000) + (value as { $now: number }).$now
  }
  return value
}

function apply(target: Record<string, unknown>, changes: Record<string, unknown> = {}): void {
  for (const [name, value] of Object.entries(changes)) {
    const v = resolve(value)
    if (v === undefined) delete target[name]
    else target[name] = v
  }
}

let fx: FuzzDrive
beforeAll(async () => {
  fx = await startFuzzDrive()
})
afterAll(() => fx.close())

describe('fuzz corpus (test/fuzz-corpus/*.json)', () => {
  it('holds at least the seeded regression cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30)
  })

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const t = c.token ?? {}
    const claims: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(t.claims ?? {})) claims[k] = resolve(v)
    const token = t.hmac
      ? await fx.issuer.mintHmac({ jkt: fx.key.jkt })
      : c.token === undefined
        ? fx.token
        : await fx.mint({
            ...(t.typ !== undefined ? { typ: t.typ } : {}),
            ...(t.kid !== undefined ? { kid: t.kid } : {}),
            ...(t.aud !== undefined ? { aud: t.aud } : {}),
            claims,
          })

    const parts = await fx.proofParts(c.message, token)
    const p = c.proof ?? {}
    apply(parts.claims, p.claims)
    apply(parts.header, p.header)
    if (p.jwk !== undefined) parts.header.jwk = { ...(parts.header.jwk as object), ...p.jwk }
    if (p.mcpExtra !== undefined)
      parts.claims.mcp = { ...(parts.claims.mcp as object), ...p.mcpExtra }
    const enc = (v: unknown) => base64url.encode(JSON.stringify(v))
    const proof = p.unsigned ? `${enc(parts.header)}.${enc(parts.claims)}.` : await fx.sign(parts)

    let body: string
    if (c.body === undefined) body = JSON.stringify(c.message)
    else if (typeof c.body === 'string') body = c.body
    else {
      const shell = JSON.stringify({ ...c.message, pad: '' })
      body = JSON.stringify({ ...c.message, pad: 'a'.repeat(c.body.$padTo - shell.length) })
      expect(Buffer.byteLength(body)).toBe(c.body.$padTo)
    }

    const headers: Record<string, string | string[]> = await fx.honestHeaders(c.message, { token })
    headers.dpop = proof
    const fill = (v: string) => v.replaceAll('${token}', token).replaceAll('${proof}', proof)
    for (const [name, value] of Object.entries(c.headers ?? {})) {
      if (value === null) delete headers[name]
      else headers[name] = Array.isArray(value) ? value.map(fill) : fill(value)
    }

    const outcome = await fx.send({ headers, body })
    const label = `${c.name} (${c.why})`
    expectWellFormed(fx, outcome.answer, label)
    if (c.expect.fate === 'refuse') expectNothingRan(outcome, label)
    if (c.expect.fate === 'succeed') {
      expect(outcome.answer.status, `${label}: ${outcome.answer.text}`).toBe(200)
      expect(outcome.allowed).toHaveLength(1)
    }
    if (c.expect.status !== undefined)
      expect(c.expect.status, label).toContain(outcome.answer.status)
    if (c.expect.code !== undefined) {
      expect((outcome.answer.json as { code?: string } | undefined)?.code, label).toBe(
        c.expect.code,
      )
    }
  })
})
