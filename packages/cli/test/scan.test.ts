import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main, memoryIo, startStack } from '../src/index.js'
import { freePort } from '../src/stack.js'
import type { Stack } from '../src/index.js'
import type { ScanReport } from '../src/scan/checks.js'
import { boundedFetch } from '../src/scan/http.js'
import { startSdkServer } from './scan-servers.js'

async function scan(args: string[]) {
  const io = memoryIo()
  const code = await main(['scan', ...args], io)
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n'), io }
}
const statuses = (report: ScanReport) =>
  Object.fromEntries(report.checks.map((c) => [c.id, c.status]))

describe('callproof scan against the insecure baseline', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ drive: 'baseline' })
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('finds every applicable finding, with two signed-in callers and a probe', async () => {
    const { code, stdout } = await scan([
      stack.url,
      '--login',
      '--user',
      'alice',
      '--user',
      'bob',
      '--probe',
      'whoami',
      '--json',
    ])
    expect(code).toBe(1)
    const report = JSON.parse(stdout) as ScanReport
    expect(Object.keys(report)).toEqual(['target', 'checks'])
    expect(report.target).toBe(stack.url)
    expect(statuses(report)).toEqual({
      // Refused before anyone signed in: the baseline only goes wrong once someone has.
      'unauthenticated-access': 'ok',
      'persistent-authorization': 'vulnerable',
      'session-as-credential': 'vulnerable',
      'token-not-sender-constrained': 'vulnerable',
      'request-replay': 'vulnerable',
      'call-not-bound': 'vulnerable',
      'session-not-bound-to-caller': 'vulnerable',
    })
    for (const check of report.checks)
      expect(Object.keys(check)).toEqual(['id', 'status', 'detail'])
  })

  it('now serves anyone: unauthenticated-access, and the rest skipped for what they would add', async () => {
    const { code, stdout } = await scan([stack.url])
    expect(code).toBe(1)
    const lines = stdout.split('\n')
    expect(lines[0]).toBe(`callproof scan ${stack.url}`)
    expect(lines.filter((l) => l.includes('VULNERABLE'))).toHaveLength(1)
    expect(stdout).toContain('unauthenticated-access')
    expect(stdout).toContain('1 vulnerable, 0 ok, 6 skipped')
    expect(stdout).toContain('What the findings mean')
    expect(stdout).toContain('docs/threat-model.md#t1-')
  })
})

describe('callproof scan against the drive and the development authorization server', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ drive: 'callproof' })
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('finds nothing: every check ok, exit 0', async () => {
    const { code, stdout, stderr } = await scan([
      stack.url,
      '--login',
      '--user',
      'alice',
      '--user',
      'bob',
      '--probe',
      'whoami',
      '--json',
    ])
    expect(stderr).toBe('')
    const report = JSON.parse(stdout) as ScanReport
    expect(report.checks.map((c) => [c.id, c.status])).toEqual(
      report.checks.map((c) => [c.id, 'ok']),
    )
    expect(report.checks).toHaveLength(7)
    expect(code).toBe(0)
    const detail = (id: string) => report.checks.find((c) => c.id === id)?.detail ?? ''
    expect(detail('token-not-sender-constrained')).toContain(
      'as DPoP with a proof by another key: 401',
    )
    expect(detail('request-replay')).toContain('401 invalid_dpop_proof')
    expect(detail('call-not-bound')).toContain('401 invalid_dpop_proof')
    expect(detail('session-not-bound-to-caller')).toContain('404')
  })

  it('with a DPoP-bound token alone: the token is refused (ok), the rest needs --login', async () => {
    // The token is obtained by a signed-in scan and read back from --verbose? No: tokens are
    // never printed. It is taken from a real sign-in through the client instead.
    const { connect } = await import('@callproof/client')
    let token = ''
    const client = await connect(stack.url, {
      interaction: stack.devInteraction({ user: 'alice' }),
      development: true,
      fetch: async (input, init) => {
        const auth = new Headers(init?.headers).get('authorization')
        if (auth?.startsWith('DPoP ') === true) token = auth.slice(5)
        return fetch(input, init)
      },
    })
    await client.listTools()
    await client.close()
    expect(token).not.toBe('')
    const { code, stdout } = await scan([stack.url, '--token', token, '--json'])
    const report = JSON.parse(stdout) as ScanReport
    expect(statuses(report)['token-not-sender-constrained']).toBe('ok')
    expect(statuses(report)['unauthenticated-access']).toBe('ok')
    expect(report.checks.find((c) => c.id === 'persistent-authorization')?.detail).toContain(
      '--login signs them',
    )
    expect(code).toBe(0)
  })
})

describe('callproof scan: the command line, the wire and untrusted text', () => {
  it('refuses a wrong command line with exit 2 and one line', async () => {
    for (const args of [
      [],
      ['not a url'],
      ['ftp://127.0.0.1/mcp'],
      ['http://127.0.0.1:1/mcp', '--probe', 'ping={'],
      ['http://127.0.0.1:1/mcp', '--probe', 'ping=[1]'],
      ['http://127.0.0.1:1/mcp', '--token', 'a', '--token', 'b', '--login'],
      ['http://127.0.0.1:1/mcp', '--token', 'Bearer abc'],
      ['http://127.0.0.1:1/mcp', '--token', 'abc', '--token', 'abc'],
      ['http://127.0.0.1:1/mcp', '--user', 'alice', '--user', 'alice'],
      ['http://127.0.0.1:1/mcp', 'extra-positional'],
      ['http://127.0.0.1:1/mcp', '--probe', '=1'],
      ['http://drive.example/mcp', '--token', 'abc'],
      ['http://user:pw@127.0.0.1:1/mcp'],
      ['http://127.0.0.1:1/mcp', '--frobnicate'],
    ]) {
      const { code, stderr, stdout } = await scan(args)
      expect({ args, code }).toEqual({ args, code: 2 })
      expect(stdout).toBe('')
      expect(stderr.split('\n')).toHaveLength(1)
      expect(stderr).toMatch(/^callproof: .*callproof scan --help/)
    }
  })

  it('reports an unreachable server with exit 2, one line, no stack trace', async () => {
    const port = await freePort()
    const { code, stderr, stdout } = await scan([`http://127.0.0.1:${port}/mcp`, '--json'])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr.split('\n')).toHaveLength(1)
    expect(stderr).toContain(`cannot reach http://127.0.0.1:${port}/mcp`)
    expect(stderr).not.toContain('    at ')
  })

  it('follows no redirect: credentials never reach another origin', async () => {
    const elsewhere: string[] = []
    const other = createServer((req, res) => {
      elsewhere.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/mcp`
    // Redirects only requests that carry credentials, after answering anonymous ones with 401.
    const redirecting = createServer((req, res) => {
      if (req.url === '/everyone') {
        res.writeHead(307, { location: otherUrl }).end()
      } else if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Bearer' }).end()
      } else {
        res.writeHead(307, { location: otherUrl }).end()
      }
    })
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/mcp`
    try {
      const { code, stdout } = await scan([url, '--token', 'secret-token', '--json'])
      expect(code).toBe(0)
      const report = JSON.parse(stdout) as ScanReport
      expect(report.checks.find((c) => c.id === 'persistent-authorization')?.detail).toContain(
        `307 redirect to ${otherUrl}, not followed`,
      )
      // A target that redirects everyone is not scanned at all.
      const everyone = await scan([url.replace('/mcp', '/everyone'), '--token', 'secret-token'])
      expect(everyone.code).toBe(2)
      expect(everyone.stdout).toBe('')
      expect(everyone.stderr).toContain(`redirects (307) to ${otherUrl}; not followed`)
      // Not followed at all, not even without the token (fetch would drop it across origins).
      expect(elsewhere).toEqual([])
    } finally {
      other.close()
      redirecting.close()
    }
  })

  it('bounds every answer in size and every request in time', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x')
    let hanging: (() => void) | undefined
    const server = createServer((req, res) => {
      if (req.url === '/hang') {
        hanging = () => res.end()
        return
      }
      // An endless answer: the scanner must stop reading, not the server stop writing.
      res.writeHead(200, { 'content-type': 'application/json' })
      const more = () => {
        while (res.write(chunk)) if (res.destroyed) return
        if (!res.destroyed) res.once('drain', more)
      }
      res.on('close', () => res.destroy())
      more()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const { code, stdout } = await scan([`${origin}/mcp`, '--json'])
      expect(code).toBe(0)
      const report = JSON.parse(stdout) as ScanReport
      expect(report.checks[0]?.detail).toContain('200 (answer over 1 MiB, not read)')
      const slow = boundedFetch(fetch, { timeoutMs: 200 })
      await expect(slow(`${origin}/hang`)).rejects.toMatchObject({ name: 'TimeoutError' })
    } finally {
      hanging?.()
      server.closeAllConnections()
      server.close()
    }
  })

  it('escapes and cuts server text; --verbose names what it sent without printing secrets', async () => {
    const hostile = `\u001b[2J\u202eevil\u200bname${'x'.repeat(100)}`
    // The SDK warns (on the console) about such a tool name, and registers it anyway.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const s = await startSdkServer('none', { extraTools: [hostile] }).finally(() =>
      warn.mockRestore(),
    )
    try {
      const { code, stdout, stderr } = await scan([s.url, '--verbose'])
      expect(code).toBe(1)
      for (const c of ['\u001b', '\u202e', '\u200b']) {
        expect(stdout).not.toContain(c)
        expect(stderr).not.toContain(c)
      }
      expect(stdout).toContain('\\u{1b}[2J\\u{202e}evil\\u{200b}name')
      // Tool names are cut at 40 characters in the report.
      expect(stdout).not.toContain('x'.repeat(40))
      for (const line of stdout.split('\n')) expect(line.length).toBeLessThan(400)
      expect(stderr).toContain('→ POST')
      expect(stderr).toContain('[no credentials]')
      expect(stderr).toContain('"method":"tools/list"')
    } finally {
      await s.close()
    }
    const bearer = await startSdkServer('bound-bearer')
    try {
      const { stderr } = await scan([bearer.url, '--token', bearer.tokens.alice, '--verbose'])
      expect(stderr).toContain(`authorization: Bearer <token, ${bearer.tokens.alice.length} chars>`)
      expect(stderr).not.toContain(bearer.tokens.alice)
    } finally {
      await bearer.close()
    }
  })
})
