// `callproof call --trace` against the development stack: every request's decoded proof and
// token, the challenge, and the retry, on stderr; escaped, bounded, never a whole credential.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main, memoryIo, startStack } from '../src/index.js'
import type { Stack } from '../src/index.js'

let stack: Stack
beforeAll(async () => {
  stack = await startStack({ drive: 'callproof' })
})
afterAll(async () => {
  await stack?.close()
})

/** A compact JWS: what must never be printed whole. */
const JWT = /eyJ[\w-]{20,}\.eyJ[\w-]{20,}\.[\w-]{20,}/

describe('callproof call --trace', () => {
  it('shows each request’s decoded proof and token, the MFA challenge and the retry', async () => {
    const io = memoryIo()
    const code = await main(
      ['call', stack.url, 'delete_file', 'path=notes/todo.txt', '--user', 'alice', '--trace'],
      io,
    )
    expect(code).toBe(0)
    expect(io.stdout.join('\n')).toContain('notes/todo.txt')
    const err = io.stderr.join('\n')
    const lines = io.stderr.flatMap((l) => l.split('\n'))
    // The first request has no credentials: the server's challenge names its metadata.
    expect(err).toContain(`→ POST ${stack.url}  initialize`)
    expect(err).toMatch(
      /access token: none\n {4}DPoP proof: none\n← 401\n {4}WWW-Authenticate: DPoP /,
    )
    // The call itself: the proof decoded (its key, its method, URL and the binding of this call).
    const proofHeader = lines.find((l) => l.startsWith('    DPoP proof header '))
    expect(proofHeader).toContain('"typ":"dpop+jwt"')
    expect(proofHeader).toContain('"jwk":{')
    const proofClaims = lines.filter((l) => l.includes(' claims ') && l.includes('"htm":"POST"'))
    expect(
      proofClaims.some((l) => l.includes('"mcp":{"method":"tools/call","name":"delete_file"')),
    ).toBe(true)
    expect(proofClaims.every((l) => l.endsWith('(signature elided)'))).toBe(true)
    // The token's claims: alice, bound to the key.
    expect(lines.some((l) => l.includes('"sub":"alice"') && l.includes('"cnf":{"jkt":'))).toBe(true)
    // The step-up challenge, with the server's reason, then the retry of the same call.
    expect(err).toMatch(
      /← 401\n {4}WWW-Authenticate: DPoP error="insufficient_user_authentication"/,
    )
    const retry = lines.findIndex((l) =>
      l.includes('tools/call delete_file  (the retry, after the challenge above)'),
    )
    expect(retry).toBeGreaterThan(0)
    expect(lines.slice(retry).find((l) => l.startsWith('← '))).toBe('← 200')
    // Decoded, never whole: no credential can be copied out of the trace.
    expect(err).not.toMatch(JWT)
  })

  it('escapes what came from outside: a tool name with a terminal escape is shown as \\u{1b}', async () => {
    const io = memoryIo()
    const code = await main(
      ['call', stack.url, 'evil\u001b[2Jname', '--user', 'alice', '--trace'],
      io,
    )
    expect(code).toBe(1)
    const err = io.stderr.join('\n')
    expect(err).toContain('tools/call evil\\u{1b}[2Jname')
    expect(err).toContain('"name":"evil\\u001b[2Jname"')
    expect(err).not.toContain('\u001b')
  })

  it('without --trace, shows only the challenges', async () => {
    const io = memoryIo()
    expect(await main(['call', stack.url, 'whoami', '--user', 'alice'], io)).toBe(0)
    const err = io.stderr.join('\n')
    expect(err).toContain('← 401 no credentials yet')
    expect(err).not.toContain('DPoP proof header')
  })
})
