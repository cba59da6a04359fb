import { connect } from '@callproof/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inspectCommand } from '../src/inspect.js'
import { inspectJwt, main, memoryIo, startStack } from '../src/index.js'
import type { Inspection, Stack } from '../src/index.js'
import { AGENT_METADATA, recordingFetch } from '../src/trace.js'
import type { Exchange } from '../src/trace.js'

let stack: Stack
let call: Exchange
let share: Exchange
let bobToken: string

const token = (e: Exchange) => (e.request.headers.authorization ?? '').replace(/^DPoP /, '')
const proof = (e: Exchange) => e.request.headers.dpop ?? ''
const check = (i: Inspection, name: string) => i.checks.find((c) => c.check === name)
const claim = (i: Inspection, name: string) => i.claims.find((c) => c.name === name)

beforeAll(async () => {
  stack = await startStack({ drive: 'callproof' })
  const recorder = recordingFetch(new URL(stack.url).origin)
  const alice = await connect(stack.url, {
    interaction: stack.devInteraction({ user: 'alice' }),
    fetch: recorder.fetch,
    development: true,
    registration: { clientMetadata: AGENT_METADATA('inspect test') },
  })
  await alice.callTool({ name: 'read_file', arguments: { path: 'README.md' } })
  await alice.callTool({ name: 'share_file', arguments: { path: 'README.md', with: 'bob' } })
  await alice.close()
  const ok = recorder.exchanges.filter((e) => e.status === 200)
  call = ok.find((e) => e.tool === 'read_file') as Exchange
  share = ok.find((e) => e.tool === 'share_file') as Exchange
  const bobRecorder = recordingFetch(new URL(stack.url).origin)
  const bob = await connect(stack.url, {
    interaction: stack.devInteraction({ user: 'bob' }),
    fetch: bobRecorder.fetch,
    development: true,
  })
  await bob.callTool({ name: 'whoami', arguments: {} })
  await bob.close()
  bobToken = token(bobRecorder.exchanges.find((e) => e.tool === 'whoami') as Exchange)
})
afterAll(() => stack?.close())

describe('inspect a real DPoP proof', () => {
  it('explains every claim and passes every check with its token and body', async () => {
    const i = await inspectJwt(proof(call), {
      accessToken: token(call),
      body: JSON.parse(call.request.body ?? ''),
    })
    expect(i.kind).toBe('dpop-proof')
    expect(i.header.map((h) => h.name)).toEqual(expect.arrayContaining(['typ', 'alg', 'jwk']))
    for (const name of ['jti', 'htm', 'htu', 'iat', 'ath', 'mcp']) {
      expect(claim(i, name)?.meaning, name).toBeTruthy()
    }
    expect(claim(i, 'htu')?.value).toBe(stack.url)
    expect(claim(i, 'mcp')?.meaning).toContain('read_file')
    expect(i.checks.map((c) => [c.check, c.ok])).toEqual([
      ['signature', true],
      ['ath', true],
      ['key binding', true],
      ['call binding', true],
    ])
  })

  it('shows altered arguments as a call-binding failure', async () => {
    const body = JSON.parse(call.request.body ?? '') as { params: { arguments: unknown } }
    body.params.arguments = { path: 'reports/q3.csv' }
    const i = await inspectJwt(proof(call), { body })
    expect(check(i, 'call binding')).toMatchObject({ ok: false })
    expect(check(i, 'call binding')?.detail).toContain('args')
  })

  it('shows a proof presented with someone else’s token as a key-binding failure', async () => {
    const i = await inspectJwt(proof(call), { accessToken: bobToken })
    expect(check(i, 'ath')?.ok).toBe(false)
    expect(check(i, 'key binding')?.ok).toBe(false)
  })

  it('detects a forged signature', async () => {
    const [h, p, s] = proof(call).split('.')
    const forged = `${h}.${p}.${(s ?? '').startsWith('A') ? 'B' : 'A'}${(s ?? '').slice(1)}`
    expect(check(await inspectJwt(forged), 'signature')?.ok).toBe(false)
  })
})

describe('inspect a real access token', () => {
  it('explains the claims and verifies the signature against the issuer given', async () => {
    const i = await inspectJwt(token(call), { issuer: stack.issuer })
    expect(i.kind).toBe('access-token')
    expect(i.header.find((h) => h.name === 'typ')?.value).toBe('at+jwt')
    for (const name of [
      'iss',
      'sub',
      'aud',
      'exp',
      'iat',
      'jti',
      'client_id',
      'scope',
      'cnf',
      'acr',
      'auth_time',
    ]) {
      expect(claim(i, name)?.meaning, name).toBeTruthy()
    }
    expect(claim(i, 'cnf')?.meaning).toContain('sender-constrained')
    expect(claim(i, 'acr')?.meaning).toContain('password')
    expect(check(i, 'signature')).toMatchObject({ ok: true })
  })

  it('explains a per-call approval’s authorization_details', async () => {
    const i = await inspectJwt(token(share), { issuer: stack.issuer })
    expect(claim(i, 'authorization_details')?.meaning).toContain('exactly one call')
    expect(claim(i, 'authorization_details')?.meaning).toContain('share_file')
    expect(check(i, 'signature')?.ok).toBe(true)
  })

  it('refuses a token whose payload was changed', async () => {
    const [h, p, s] = token(call).split('.')
    const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >
    claims.sub = 'mallory'
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
    const i = await inspectJwt(forged, { issuer: stack.issuer })
    expect(claim(i, 'sub')?.value).toBe('mallory')
    expect(check(i, 'signature')?.ok).toBe(false)
  })

  it('does not fetch keys for a non-loopback issuer unless told to', async () => {
    const [h, p, s] = token(call).split('.')
    const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >
    claims.iss = 'https://issuer.example'
    const i = await inspectJwt(
      `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`,
    )
    expect(check(i, 'signature')).toMatchObject({ ok: false })
    expect(check(i, 'signature')?.detail).toContain('--issuer')
  })
})

describe('callproof inspect (command)', () => {
  it('prints the explanation and exits 0 when every check passes', async () => {
    const io = memoryIo()
    const code = await main(
      [
        'inspect',
        `DPoP: ${proof(call)}`,
        '--token',
        token(call),
        '--body',
        call.request.body ?? '',
      ],
      io,
    )
    const out = io.stdout.join('\n')
    expect(code).toBe(0)
    expect(out).toContain('DPoP proof (RFC 9449)')
    expect(out).toContain('✓ call binding')
    expect(out).toContain('key binding')
  })

  it('reads the JWT from stdin with "-", as a pasted header line', async () => {
    const io = memoryIo()
    const code = await inspectCommand(['-', '--issuer', stack.issuer], io, () =>
      Promise.resolve(`Authorization: DPoP ${token(call)}\n`),
    )
    expect(code).toBe(0)
    expect(io.stdout.join('\n')).toContain('JWT access token (RFC 9068)')
  })

  it('prints JSON with --json', async () => {
    const io = memoryIo()
    expect(await main(['inspect', token(call), '--json', '--issuer', stack.issuer], io)).toBe(0)
    expect((JSON.parse(io.stdout.join('\n')) as Inspection).kind).toBe('access-token')
  })

  it('exits 1 when a check fails', async () => {
    const io = memoryIo()
    expect(await main(['inspect', proof(call), '--token', bobToken], io)).toBe(1)
    expect(io.stdout.join('\n')).toContain('✗ key binding')
  })

  it('ends with one clear line for something that is not a JWT', async () => {
    const io = memoryIo()
    expect(await main(['inspect', 'not-a-jwt'], io)).toBe(1)
    expect(io.stderr).toEqual([
      'callproof: that is not a JWT (expected three base64url parts separated by dots) — paste the token or proof itself, e.g. `callproof inspect eyJhbGciOi…`',
    ])
  })
})
