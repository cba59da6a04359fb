import { afterEach, describe, expect, it } from 'vitest'
import { main, memoryIo } from '../src/index.js'
import type { ScanReport } from '../src/scan/checks.js'
import { startAuthServer } from '../src/index.js'
import { startPlainDpopServer, startSdkServer } from './scan-servers.js'
import type { SdkServer, SdkServerKind } from './scan-servers.js'

let server: SdkServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

async function start(kind: SdkServerKind): Promise<SdkServer> {
  server = await startSdkServer(kind)
  return server
}

async function scan(args: string[]): Promise<{ code: number; report: ScanReport; stderr: string }> {
  const io = memoryIo()
  const code = await main(['scan', ...args, '--json'], io)
  expect(io.stdout).toHaveLength(1)
  return {
    code,
    report: JSON.parse(io.stdout[0] ?? '') as ScanReport,
    stderr: io.stderr.join('\n'),
  }
}

const findings = (report: ScanReport) =>
  report.checks.filter((c) => c.status === 'vulnerable').map((c) => c.id)
const status = (report: ScanReport, id: string) => report.checks.find((c) => c.id === id)?.status

describe('callproof scan against plain MCP SDK v1 servers', () => {
  it('(a) no authentication: unauthenticated-access, everything else skipped, no tool called', async () => {
    const s = await start('none')
    const { code, report } = await scan([s.url, '--token', s.tokens.alice])
    expect(code).toBe(1)
    expect(report.target).toBe(s.url)
    expect(findings(report)).toEqual(['unauthenticated-access'])
    expect(report.checks.filter((c) => c.status === 'skipped')).toHaveLength(6)
    expect(report.checks[0]?.detail).toContain('2 tools: ping, erase_everything')
    expect(s.callsSeen).toEqual([])
  })

  it('(b) the SDK’s requireBearerAuth: only token-not-sender-constrained with one caller', async () => {
    const s = await start('sdk-bearer')
    const { code, report } = await scan([s.url, '--token', s.tokens.alice])
    expect(code).toBe(1)
    expect(findings(report)).toEqual(['token-not-sender-constrained'])
    expect(status(report, 'unauthenticated-access')).toBe('ok')
    expect(status(report, 'persistent-authorization')).toBe('ok')
    expect(status(report, 'session-as-credential')).toBe('ok')
  })

  it('(b) with a second caller: the SDK’s stateful transport does not tie a session to its caller', async () => {
    const s = await start('sdk-bearer')
    const { report } = await scan([s.url, '--token', s.tokens.alice, '--token', s.tokens.bob])
    expect(findings(report)).toEqual([
      'token-not-sender-constrained',
      'session-not-bound-to-caller',
    ])
  })

  it('(c) a server that caches the first token and then serves anyone', async () => {
    const s = await start('cache-first')
    const { code, report } = await scan([s.url, '--token', s.tokens.alice, '--probe', 'ping'])
    expect(code).toBe(1)
    expect(findings(report)).toEqual([
      'persistent-authorization',
      'session-as-credential',
      'token-not-sender-constrained',
      'request-replay',
    ])
    expect(status(report, 'unauthenticated-access')).toBe('ok')
    expect(status(report, 'call-not-bound')).toBe('skipped')
    expect(s.callsSeen.every((name) => name === 'ping')).toBe(true)
  })

  it('(d) a server that takes the session id as identity', async () => {
    const s = await start('session-identity')
    const { report } = await scan([s.url, '--token', s.tokens.alice, '--token', s.tokens.bob])
    expect(findings(report)).toEqual([
      'session-as-credential',
      'token-not-sender-constrained',
      'session-not-bound-to-caller',
    ])
    expect(status(report, 'persistent-authorization')).toBe('ok')
  })

  it('(e) a correct bearer server: only what bearer tokens cannot prevent', async () => {
    const s = await start('bound-bearer')
    const { code, report } = await scan([
      s.url,
      '--token',
      s.tokens.alice,
      '--token',
      s.tokens.bob,
      '--probe',
      'ping',
    ])
    expect(code).toBe(1)
    // A bearer token works for whoever holds it, and a bearer request carries nothing a server
    // could recognise a second time: both are true of every correct bearer server.
    expect(findings(report)).toEqual(['token-not-sender-constrained', 'request-replay'])
    for (const id of [
      'unauthenticated-access',
      'persistent-authorization',
      'session-as-credential',
      'session-not-bound-to-caller',
    ]) {
      expect(status(report, id)).toBe('ok')
    }
    expect(status(report, 'call-not-bound')).toBe('skipped')
  })

  it('a server that hands out session ids and ignores them: no session finding', async () => {
    const s = await start('ignores-sessions')
    const { report } = await scan([s.url, '--token', s.tokens.alice, '--token', s.tokens.bob])
    expect(findings(report)).toEqual(['token-not-sender-constrained'])
    expect(status(report, 'session-as-credential')).toBe('ok')
    expect(status(report, 'session-not-bound-to-caller')).toBe('skipped')
    expect(report.checks.at(-1)?.detail).toContain('a session id it never issued')
  })

  it('calls no tool without --probe, and only the named tool with it', async () => {
    const s = await start('none')
    await scan([s.url])
    expect(s.callsSeen).toEqual([])
    const { report } = await scan([s.url, '--probe', 'ping={}'])
    expect(findings(report)).toEqual(['unauthenticated-access'])
    expect(s.callsSeen).toEqual(['ping'])
    expect(s.callsRun).toEqual(['ping'])

    const bearer = await startSdkServer('bound-bearer')
    try {
      await scan([bearer.url, '--token', bearer.tokens.alice, '--token', bearer.tokens.bob])
      expect(bearer.callsSeen).toEqual([])
      await scan([bearer.url, '--token', bearer.tokens.alice, '--probe', 'ping'])
      expect(new Set(bearer.callsSeen)).toEqual(new Set(['ping']))
      expect(bearer.callsRun).not.toContain('erase_everything')
    } finally {
      await bearer.close()
    }
  })
})

describe('callproof scan against a plain RFC 9449 DPoP server (SDK + jose, no callproof)', () => {
  it('finds only call-not-bound: RFC 9449 proofs do not cover the request body', async () => {
    const dpop = await startPlainDpopServer()
    const auth = await startAuthServer({ resources: [{ uri: dpop.url, scopes: ['notes:read'] }] })
    try {
      await dpop.trust(auth.issuer)
      const args = [dpop.url, '--login', '--user', 'alice', '--user', 'bob', '--probe', 'ping']
      const { code, report } = await scan(args)
      expect(findings(report)).toEqual(['call-not-bound'])
      expect(report.checks.filter((c) => c.status === 'ok')).toHaveLength(6)
      expect(code).toBe(1)
      // It ran for caller A and, with the changed arguments, once more; the replayed copy did not.
      expect(dpop.callsRun).toEqual(['ping', 'ping'])
    } finally {
      await auth.close()
      await dpop.close()
    }
  })
})
