/**
 * Clocks skewed by up to the configured tolerance work through createCallproof; beyond it the
 * request is refused with a reason that says which clock check failed (issue 5, faults). The
 * server's clock is shifted with the `clock` option; tokens and proofs are made with real time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { parseWwwAuthenticate } from '@callproof/core'
import { createCallproof, createToolRegistry } from '../src/index.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { provenRequest, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

const SKEW = 30
const MAX_AGE = 60

let issuer: TestIssuer
let alice: ClientKey
let run: Running
let resource = ''
/** How far the server's clock is off real time, in seconds (negative: behind). */
let offset = 0
let runs = 0

beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
  run = await listen((origin) => {
    resource = `${origin}/mcp`
    const tools = createToolRegistry({ name: 'skew-test', version: '0.0.0' })
    tools.register('whoami', { policy: { public: true } }, () => {
      runs++
      return { content: [{ type: 'text', text: 'ok' }] }
    })
    const callproof = createCallproof({
      resource,
      issuers: issuer.issuer,
      tools,
      clockSkewSeconds: SKEW,
      proofMaxAgeSeconds: MAX_AGE,
      clock: () => Date.now() + offset * 1000,
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
})
afterAll(async () => {
  await run.close()
  await issuer.close()
})

const now = () => Math.floor(Date.now() / 1000)

/** A call with a token minted now (real time) unless `claims` say otherwise, and a fresh proof. */
async function call(serverOffset: number, claims: Record<string, unknown> = {}) {
  offset = serverOffset
  const token = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt }, ...claims })
  const before = runs
  const response = await fetch(
    resource,
    await provenRequest(resource, { token, key: alice, message: toolCall('whoami') }),
  )
  const ran = runs > before
  if (response.status === 200) return { status: 200, ran, error: undefined, description: '' }
  const body = (await response.json()) as { error_description: string }
  const challenge = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')[0]
  return {
    status: response.status,
    ran,
    error: challenge?.params['error'],
    description: body.error_description,
  }
}

describe(`clock skew through createCallproof (clockSkewSeconds ${SKEW}, proofMaxAgeSeconds ${MAX_AGE})`, () => {
  it('a client (and issuer) clock ahead of the server within the tolerance works', async () => {
    // Server 25 s behind: the proof's iat and the token's iat are 25 s in the server's future.
    expect(await call(-(SKEW - 5))).toMatchObject({ status: 200, ran: true })
  })

  it('a proof from a client clock ahead beyond the tolerance fails: iat too far in the future', async () => {
    // The token is issued in the past so that only the proof's iat is out of bounds.
    const result = await call(-(SKEW + 10), { iat: now() - 120 })
    expect(result).toMatchObject({ status: 401, ran: false, error: 'invalid_dpop_proof' })
    expect(result.description).toMatch(
      /proof iat is too far in the future: \d+ s ahead \(clock skew tolerance 30 s\)/,
    )
  })

  it('a token issued by a clock ahead beyond the tolerance fails: iat in the future', async () => {
    const result = await call(-(SKEW + 10))
    expect(result).toMatchObject({ status: 401, ran: false, error: 'invalid_token' })
    expect(result.description).toMatch(
      /access token iat is in the future \(\d+ s ahead, beyond the clock skew tolerance of 30 s\)/,
    )
  })

  it('a client clock behind the server by less than the proof max age works', async () => {
    expect(await call(MAX_AGE - 10)).toMatchObject({ status: 200, ran: true })
  })

  it('a client clock behind beyond the proof max age fails: iat too old', async () => {
    const result = await call(MAX_AGE + 10, { exp: now() + 600 })
    expect(result).toMatchObject({ status: 401, ran: false, error: 'invalid_dpop_proof' })
    expect(result.description).toMatch(
      /proof iat is too old: \d+ s in the past \(at most 60 s allowed\)/,
    )
  })

  it('a token expired by less than the tolerance works; beyond it fails: token expired', async () => {
    expect(await call(0, { exp: now() - (SKEW - 10) })).toMatchObject({ status: 200, ran: true })
    const result = await call(0, { exp: now() - (SKEW + 10) })
    expect(result).toMatchObject({ status: 401, ran: false, error: 'invalid_token' })
    expect(result.description).toMatch(/access token has expired/)
  })
})
