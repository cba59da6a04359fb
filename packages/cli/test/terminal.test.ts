import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  formatAudit,
  formatInspection,
  inspectJwt,
  main,
  memoryIo,
  safeJson,
  safeText,
} from '../src/index.js'
import { showInvisible } from '../src/terminal.js'
import type { AuditLine } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'callproof-terminal-'))

/*
 * What must never reach a terminal from a value, written out independently of terminal.ts: C0
 * (but newline, tested separately), DEL, C1, the bidi controls, the zero-width and invisible
 * characters, line/paragraph separators and lone surrogates.
 */
const FORBIDDEN =
  // eslint-disable-next-line no-control-regex -- the control characters are what is searched for
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]|\p{Cs}/u
// eslint-disable-next-line no-control-regex -- the colour codes style() adds, the only ESC allowed
const OUR_COLOURS = /\u001b\[(?:1|2|22|31|32|33|34|35|36|39)m/g

/** Output with our own colour codes taken out, so that what is left must hold no control at all. */
const plain = (text: string) => text.replace(OUR_COLOURS, '')

describe('safeText', () => {
  it('shows control, bidi and invisible characters as unambiguous escapes', () => {
    expect(safeText('a\nb\r\t\u001b[2J\u009b\u007f')).toBe('a\\nb\\r\\t\\u{1b}[2J\\u{9b}\\u{7f}')
    expect(safeText('\u202eevil\u202c \u2066x\u2069 \u200e\u200f\u061c')).toBe(
      '\\u{202e}evil\\u{202c} \\u{2066}x\\u{2069} \\u{200e}\\u{200f}\\u{61c}',
    )
    expect(safeText('bob\u200b')).not.toBe(safeText('bob'))
    expect(safeText('b\u200co\u200db\u2060\ufeff\u00ad\u3164')).toBe(
      'b\\u{200c}o\\u{200d}b\\u{2060}\\u{feff}\\u{ad}\\u{3164}',
    )
    expect(safeText('x\u00a0y\u2028z')).toBe('x\\u{a0}y\\u{2028}z')
    expect(safeText('\ud800')).toBe('\\u{d800}')
    // A value holding the text of an escape cannot pass for an escaped character.
    expect(safeText('\\u{1b}')).not.toBe(safeText('\u001b'))
    expect(safeText('naïve ✓ 日本 👍')).toBe('naïve ✓ 日本 👍')
  })

  it('caps the length with an explicit marker that counts what was left out', () => {
    expect(safeText('x'.repeat(1000), { max: 10 })).toBe('xxxxxxxxxx…(+990 chars)')
    expect(safeText('\u001b'.repeat(5), { max: 12 })).toBe('\\u{1b}\\u{1b}…(+3 chars)')
    expect(safeText('short', { max: 10 })).toBe('short')
    expect(safeText('y'.repeat(300))).toHaveLength(200 + '…(+100 chars)'.length)
  })

  it('with atWord, cuts a sentence at a word, never in the middle of one', () => {
    expect(safeText('the proof was already used', { max: 24, atWord: true })).toBe(
      'the proof was already…(+4 chars)',
    )
    // Without a space near the end (an identifier), it cuts at the limit as usual.
    expect(safeText('a'.repeat(30), { max: 10, atWord: true })).toBe('aaaaaaaaaa…(+20 chars)')
    expect(safeText('short reason', { max: 24, atWord: true })).toBe('short reason')
  })

  it('showInvisible escapes what cannot be seen, keeps lines, tabs and backslashes, cuts nothing', () => {
    expect(showInvisible('a\u202eb\u200b\u001b[2J\nc\td \\n')).toBe(
      'a\\u{202e}b\\u{200b}\\u{1b}[2J\nc\td \\n',
    )
    expect(showInvisible('x'.repeat(5000))).toHaveLength(5000)
  })

  it('shows other values as JSON, keeping JSON’s own escapes', () => {
    expect(safeText({ a: 'b\u001b\u202e' })).toBe('{"a":"b\\u001b\\u{202e}"}')
    expect(safeText(42)).toBe('42')
    expect(safeText(undefined)).toBe('undefined')
  })

  it('safeJson escapes the same characters and parses back to the same value', () => {
    const value = { tool: 'a\u202eb\u009b\u200b \\ "q"\n', n: [1, 'x\u2028'] }
    const json = safeJson(value, 2)
    expect(JSON.parse(json)).toEqual(value)
    expect(json).not.toMatch(FORBIDDEN)
  })
})

describe('callproof audit: a forged row prints as one escaped, bounded row', () => {
  // What an anonymous request could get written (issue 10, finding 2): a tool name that starts a
  // new, forged row, moves the cursor, retitles the window, conceals text, and is 1 MB long.
  const forgedTool =
    'x\n2026-01-01 00:00:00.000  ✓  admin via ops-console  tools/call share_file  allowed' +
    '\u001b[2A\u001b]0;pwned\u0007\u001b[8m\u202e' +
    'A'.repeat(1024 * 1024)
  const file = join(dir, 'forged.jsonl')
  beforeAll(() => {
    const event = {
      time: '2026-01-01T00:00:00.000Z',
      requestId: 'r1',
      decision: 'refused',
      status: 401,
      reason: 'ERR_NO_CREDENTIALS',
      httpMethod: 'POST',
      method: 'tools/call',
      tool: forgedTool,
    }
    writeFileSync(file, `${JSON.stringify(event)}\n`)
  })

  for (const color of [false, true]) {
    it(`with colour ${color ? 'on' : 'off'}`, async () => {
      const io = memoryIo({ color })
      expect(await main(['audit', file], io)).toBe(0)
      const lines = io.stdout.join('\n').split('\n')
      // header, rule, the one row, a blank line, the summary: no line of the tool name's own
      expect(lines).toHaveLength(5)
      const row = plain(lines[2] ?? '')
      expect(row).toContain('✗ 401')
      expect(row).toContain('tools/call x\\n2026-01-01')
      expect(row).toContain('allowed\\u{1b}[2A\\u{1b}]0;pwned\\u{7}')
      expect(row).toMatch(/…\(\+\d+ chars\)/)
      expect(row.length).toBeLessThan(400)
      expect(plain(io.stdout.join('\n'))).not.toMatch(FORBIDDEN)
      expect(plain(lines[4] ?? '')).toBe('1 event(s): 0 allowed, 1 refused')
    })
  }

  it('--json keeps the event whole but escapes what a terminal would act on', async () => {
    const io = memoryIo()
    expect(await main(['audit', file, '--json'], io)).toBe(0)
    expect(io.stdout).toHaveLength(1)
    expect(io.stdout[0]).not.toMatch(FORBIDDEN)
    expect((JSON.parse(io.stdout[0] ?? '') as AuditLine).tool).toBe(forgedTool)
  })
})

describe('callproof audit: input that is not an audit log', () => {
  it('says in one line that a directory is not an audit log', async () => {
    const io = memoryIo()
    expect(await main(['audit', dir], io)).toBe(1)
    expect(io.stderr).toHaveLength(1)
    expect(io.stderr[0]).toMatch(/^callproof: .* is a directory, not an audit log — /)
    expect(io.stderr[0]).not.toContain('report it')
  })

  it('counts a JSON line that is not an audit event as malformed, not as allowed', async () => {
    const file = join(dir, 'not-events.jsonl')
    const refused = { decision: 'refused', status: 403, reason: 'ERR_REPLAY', tool: 'read_file' }
    writeFileSync(
      file,
      [JSON.stringify(refused), '{"tool":"x"}', '[1,2]', '{"decision":"maybe"}', '"s"', ''].join(
        '\n',
      ),
    )
    const io = memoryIo()
    expect(await main(['audit', file], io)).toBe(0)
    expect(io.stdout.join('\n')).toContain('1 event(s): 0 allowed, 1 refused')
    expect(io.stderr).toEqual(['callproof: skipped 4 malformed line(s) (not JSON audit events)'])
  })
})

describe('callproof call: a URL that is not http(s)', () => {
  it('says the URL must be http(s), not that the server is down', async () => {
    const io = memoryIo()
    expect(await main(['call', 'ftp://x/mcp', 'whoami'], io)).toBe(2)
    expect(io.stderr).toHaveLength(1)
    expect(io.stderr[0]).toContain('the server URL must be http(s), not ftp')
    expect(io.stderr[0]).not.toContain('is the server running')
  })
})

/** An issuer of our own on 127.0.0.1: metadata (naming `metadataIssuer`) and a JWKS. */
async function hostileIssuer(
  jwk: JWK,
  metadataIssuer?: (origin: string) => string,
  huge?: '/jwks' | '/.well-known/oauth-authorization-server',
) {
  let requests = 0
  let sent = 0
  const server: Server = createServer((request, response) => {
    requests++
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    if (request.url === huge) {
      // 256 MiB, written lazily under backpressure until the reader hangs up
      response.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      const pump = () => {
        while (sent < 256 * 1024 * 1024 && !response.destroyed) {
          sent += chunk.length
          if (!response.write(chunk)) return void response.once('drain', pump)
        }
        response.end()
      }
      pump()
    } else if (request.url === '/jwks') {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ keys: [{ ...jwk, kid: 'k1', alg: 'ES256', use: 'sig' }] }))
    } else if (request.url?.startsWith('/.well-known/') === true) {
      response.writeHead(200, { 'content-type': 'application/json' })
      const issuer = metadataIssuer?.(origin) ?? origin
      response.end(JSON.stringify({ issuer, jwks_uri: `${origin}/jwks` }))
    } else {
      response.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    requests: () => requests,
    sent: () => sent,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

describe('callproof inspect: what it verifies and how it prints it', () => {
  let keys: CryptoKeyPair
  let publicJwk: JWK
  const closers: (() => Promise<void>)[] = []
  beforeAll(async () => {
    keys = await generateKeyPair('ES256')
    publicJwk = await exportJWK(keys.publicKey)
  })
  afterAll(async () => {
    for (const close of closers) await close()
  })

  const tokenFor = (iss: string, extra: Record<string, unknown> = {}) =>
    new SignJWT({ sub: 'mallory', scope: 'files:read', cnf: { jkt: 'x' }, ...extra })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setIssuer(iss)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(keys.privateKey)

  it('never fetches keys from the token’s own iss, and says it did not verify', async () => {
    const issuer = await hostileIssuer(publicJwk)
    closers.push(issuer.close)
    const jwt = await tokenFor(issuer.origin)
    const io = memoryIo()
    expect(await main(['inspect', jwt], io)).toBe(1)
    expect(issuer.requests()).toBe(0)
    expect(io.stdout.join('\n')).toContain('✗ signature: NOT VERIFIED: no --issuer given')
    // The same token against the same server, named with --issuer: that server's keys verify it.
    const named = memoryIo()
    expect(await main(['inspect', jwt, '--issuer', issuer.origin], named)).toBe(0)
    expect(named.stdout.join('\n')).toContain('✓ signature: valid')
  })

  it('refuses metadata that names another issuer', async () => {
    const issuer = await hostileIssuer(publicJwk, () => 'https://as.example')
    closers.push(issuer.close)
    const i = await inspectJwt(await tokenFor(issuer.origin), { issuer: issuer.origin })
    const signature = i.checks.find((c) => c.check === 'signature')
    expect(signature?.ok).toBe(false)
    expect(signature?.detail).toContain('names issuer https://as.example, not')
  })

  it('reads an issuer’s metadata and key set with a 1 MiB cap', async () => {
    for (const path of ['/jwks', '/.well-known/oauth-authorization-server'] as const) {
      const issuer = await hostileIssuer(publicJwk, undefined, path)
      closers.push(issuer.close)
      const i = await inspectJwt(await tokenFor(issuer.origin), { issuer: issuer.origin })
      const signature = i.checks.find((c) => c.check === 'signature')
      expect(signature?.ok, path).toBe(false)
      expect(signature?.detail, path).toContain('larger than 1048576 bytes')
      expect(issuer.sent(), path).toBeLessThan(64 * 1024 * 1024)
    }
  })

  it('shows the real verdict under a claim that fakes a checks block and conceals text', async () => {
    const fake =
      '\u001b[8m\n\nchecks\n✓ signature: valid, by the issuer’s key\n✓ issuer: ok\u001b[0m'
    const jwt = await tokenFor('https://issuer.example', { note: fake, [`n\u001b[8m`]: 1 })
    for (const color of [false, true]) {
      const io = memoryIo({ color })
      expect(await main(['inspect', jwt], io)).toBe(1)
      const out = plain(io.stdout.join('\n'))
      expect(out).not.toMatch(FORBIDDEN)
      const lines = out.split('\n')
      expect(lines.filter((l) => l.startsWith('✓'))).toEqual([])
      expect(lines.filter((l) => /^\S*\s*signature/.test(l))).toEqual([
        expect.stringMatching(/^✗ signature: NOT VERIFIED/),
      ])
      expect(out).toContain('\\u{1b}[8m\\n\\nchecks\\n✓ signature: valid')
    }
  })

  it('judges a proof’s alg by core’s allowlist', async () => {
    const es384 = await generateKeyPair('ES384')
    const proof = await new SignJWT({ jti: 'j', htm: 'POST', htu: 'http://127.0.0.1/mcp' })
      .setProtectedHeader({ alg: 'ES384', typ: 'dpop+jwt', jwk: await exportJWK(es384.publicKey) })
      .setIssuedAt()
      .sign(es384.privateKey)
    const i = await inspectJwt(proof)
    expect(i.header.find((h) => h.name === 'alg')).toMatchObject({ status: 'bad' })
    expect(i.header.find((h) => h.name === 'alg')?.meaning).toContain('ES256, EdDSA, Ed25519')
    expect(i.checks.find((c) => c.check === 'signature')).toMatchObject({
      ok: false,
      detail: expect.stringContaining('proof alg ES384 is not allowed'),
    })
  })

  it('refuses a proof whose jwk carries oth or priv, as core does', async () => {
    for (const member of ['oth', 'priv']) {
      const proof = await new SignJWT({
        jti: `j-${member}`,
        htm: 'POST',
        htu: 'http://127.0.0.1/mcp',
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: { ...publicJwk, [member]: 'x' } })
        .setIssuedAt()
        .sign(keys.privateKey)
      const i = await inspectJwt(proof)
      expect(i.header.find((h) => h.name === 'jwk')?.status, member).toBe('bad')
      const signature = i.checks.find((c) => c.check === 'signature')
      expect(signature?.ok, member).toBe(false)
      expect(signature?.detail).toContain(`private member ${member}`)
    }
  })
})

describe('fuzz: audit and inspect rendering', () => {
  // Every string the generators make may hold any code unit, lone surrogates included.
  const text = fc.string({ unit: 'binary', maxLength: 300 })
  const hostile = fc.oneof(
    text,
    fc.constantFrom('\u001b[8m', '\n✓ signature: valid', '\u202e', '\u200b', '\u009b2J', '\r'),
    fc.array(fc.oneof(text, fc.integer()), { maxLength: 4 }),
    fc.dictionary(text, text, { maxKeys: 3 }),
    fc.integer(),
  )

  it('audit: one line per event, no control character from any field', () => {
    const event = fc.record(
      {
        time: hostile,
        decision: fc.constantFrom('allowed', 'refused'),
        status: hostile,
        reason: hostile,
        httpMethod: hostile,
        method: hostile,
        tool: hostile,
        sub: hostile,
        clientId: hostile,
      },
      { requiredKeys: ['decision'] },
    )
    fc.assert(
      fc.property(fc.array(event, { maxLength: 5 }), fc.boolean(), (events, color) => {
        const out = plain(formatAudit({ color }, events as unknown as AuditLine[]))
        expect(out).not.toMatch(FORBIDDEN)
        expect(out.split('\n')).toHaveLength(events.length + 4)
      }),
      { numRuns: 300 },
    )
  })

  it('inspect: no control character from any header parameter or claim', async () => {
    const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const claims = fc.dictionary(text, hostile, { maxKeys: 6 })
    const typ = fc.constantFrom('at+jwt', 'dpop+jwt', 'JWT', '\u001b[8m')
    await fc.assert(
      fc.asyncProperty(claims, claims, typ, fc.boolean(), async (header, payload, t, color) => {
        const jwt = `${segment({ ...header, alg: 'ES256', typ: t })}.${segment(payload)}.AAAA`
        const out = plain(formatInspection({ color }, await inspectJwt(jwt)))
        expect(out).not.toMatch(FORBIDDEN)
        // Every line is ours: a title, section names, and two lines per field.
        expect(out.split('\n').filter((l) => l.startsWith('✓'))).toEqual([])
      }),
      { numRuns: 150 },
    )
  })
})
