import { createServer as createHttpServer } from 'node:http'
import { type AddressInfo, createServer as createTcpServer } from 'node:net'
import { Agent } from 'undici'
import { describe, expect, it } from 'vitest'
import {
  assertOpenableUrl,
  assertSafeUrl,
  authorizationServerMetadataUrls,
  generateProofKeyPair,
  guardedFetch,
  resourceCovers,
  sendWithProof,
  systemBrowserInteraction,
} from '../src/index.js'
import { isLoopbackHost } from '@callproof/core'
import { DpopNonces } from '../src/fetch.js'
import { startFake } from './support/fake.js'

const publicResolver = { resolve: async () => ['93.184.215.14'] }

describe('SSRF guards', () => {
  it('accepts https on a public address', async () => {
    await expect(
      assertSafeUrl('https://auth.example.com/x', publicResolver),
    ).resolves.toBeInstanceOf(URL)
  })

  it.each([
    ['http on a public host', 'http://auth.example.com/'],
    ['file:', 'file:///etc/passwd'],
    ['credentials in the URL', 'https://user:pw@auth.example.com/'],
    ['link-local (cloud metadata)', 'https://169.254.169.254/'],
    ['RFC 1918', 'https://10.1.2.3/'],
    ['RFC 1918 172.16/12', 'https://172.20.0.1/'],
    ['RFC 1918 192.168/16', 'https://192.168.1.1/'],
    ['CGNAT', 'https://100.64.0.1/'],
    ['unspecified', 'https://0.0.0.0/'],
    ['IPv6 unique local', 'https://[fd00::1]/'],
    ['IPv6 link-local', 'https://[fe80::1]/'],
    ['IPv4-mapped private', 'https://[::ffff:10.0.0.1]/'],
    ['loopback outside development', 'https://127.0.0.1/'],
    ['IPv4-compatible loopback', 'https://[::7f00:1]/'],
    ['IPv4-compatible metadata address', 'https://[::a9fe:a9fe]/'],
    ['IPv6 unspecified', 'https://[::]/'],
    ['6to4', 'https://[2002:a9fe:a9fe::1]/'],
    ['Teredo', 'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/'],
    ['IPv6 documentation', 'https://[2001:db8::1]/'],
    ['IPv4 documentation TEST-NET-1', 'https://192.0.2.10/'],
    ['IPv4 documentation TEST-NET-2', 'https://198.51.100.10/'],
    ['IPv4 documentation TEST-NET-3', 'https://203.0.113.10/'],
    ['a name answering 6to4', 'https://sixtofour.example/', ['2002:c0a8:101::1']],
    ['a name answering TEST-NET-3', 'https://docs.example/', ['203.0.113.7']],
  ])('refuses %s', async (_name, url, answer?: string[]) => {
    const policy = answer ? { resolve: async () => answer } : publicResolver
    await expect(assertSafeUrl(url, policy)).rejects.toMatchObject({
      code: 'ERR_UNSAFE_URL',
    })
  })

  it('keeps the loopback and public neighbours of the new ranges', async () => {
    await expect(
      assertSafeUrl('http://[::1]:4000/', { allowLoopbackHttp: true }),
    ).resolves.toBeDefined()
    for (const address of ['2001:db9::1', '2003::1', '2001:1::1', '192.0.3.1', '203.0.114.1']) {
      await expect(
        assertSafeUrl('https://neighbour.example/', { resolve: async () => [address] }),
      ).resolves.toBeDefined()
    }
  })

  it('refuses a name that resolves to a private address (every address is checked)', async () => {
    const resolve = async () => ['93.184.215.14', '10.0.0.5']
    await expect(assertSafeUrl('https://rebind.example/', { resolve })).rejects.toMatchObject({
      code: 'ERR_UNSAFE_URL',
    })
  })

  it('allows loopback http only in development, private networks only when allowed', async () => {
    await expect(
      assertSafeUrl('http://127.0.0.1:4000/', { allowLoopbackHttp: true }),
    ).resolves.toBeDefined()
    await expect(
      assertSafeUrl('http://localhost:4000/', { allowLoopbackHttp: true }),
    ).resolves.toBeDefined()
    await expect(
      assertSafeUrl('http://[::1]:4000/', { allowLoopbackHttp: true }),
    ).resolves.toBeDefined()
    await expect(
      assertSafeUrl('https://10.0.0.1/', { allowPrivateNetworks: true }),
    ).resolves.toBeDefined()
    expect(isLoopbackHost('127.1.2.3')).toBe(true)
    expect(isLoopbackHost('example.com')).toBe(false)
  })

  it('refuses a loopback name that resolves to an address that is not loopback', async () => {
    // A network that answers DNS for `.localhost` (or a hosts file gone wrong) must not receive
    // the plaintext request that http-on-loopback allows.
    for (const [url, answer] of [
      ['http://rebind.localhost:4000/', ['93.184.215.14']],
      ['http://localhost:4000/', ['127.0.0.1', '93.184.215.14']],
      ['https://app.localhost/', ['2606:2800:220:1:248:1893:25c8:1946']],
    ] as const) {
      await expect(
        assertSafeUrl(url, { allowLoopbackHttp: true, resolve: async () => answer }),
        url,
      ).rejects.toMatchObject({
        code: 'ERR_UNSAFE_URL',
        message: expect.stringContaining('is a loopback name but resolved to'),
      })
    }
    await expect(
      assertSafeUrl('http://rebind.localhost:4000/', {
        allowLoopbackHttp: true,
        resolve: async () => ['127.0.0.1', '::1'],
      }),
    ).resolves.toBeDefined()
  })

  it('allowPrivateNetworks lifts private ranges, never the tunnelling, documentation or "this host" ones', async () => {
    // Each of these embeds or routes to any IPv4 address (127.0.0.1, 169.254.169.254), or is
    // never a real destination: allowing an internal authorization server must not open them.
    const policies = [
      { allowPrivateNetworks: true },
      { allowPrivateNetworks: true, allowLoopbackHttp: true },
    ]
    for (const policy of policies) {
      await expect(assertSafeUrl('https://10.0.0.1/', policy)).resolves.toBeDefined()
      for (const url of [
        'https://[::7f00:1]/',
        'https://[2002:7f00:1::1]/',
        'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
        'https://[64:ff9b::a9fe:a9fe]/',
        'https://192.0.2.10/',
        'https://[2001:db8::1]/',
        'https://0.0.0.0/',
      ]) {
        await expect(assertSafeUrl(url, policy), url).rejects.toMatchObject({
          code: 'ERR_UNSAFE_URL',
          message: expect.stringContaining('no policy allows'),
        })
      }
      await expect(
        assertSafeUrl('https://sixtofour.example/', {
          ...policy,
          resolve: async () => ['2002:a9fe:a9fe::1'],
        }),
      ).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
    }
  })

  it('re-checks every redirect', async () => {
    const f = await startFake({
      '/hop': (_r, o) => ({ status: 302, headers: { location: `${o}/final` } }),
      '/final': () => ({ body: { ok: true } }),
      '/evil': () => ({ status: 307, headers: { location: 'https://10.0.0.1/admin' } }),
    })
    const safe = guardedFetch({ allowLoopbackHttp: true })
    expect(await (await safe(`${f.origin}/hop`)).json()).toEqual({ ok: true })
    await expect(safe(`${f.origin}/evil`)).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
    await f.close()
  })
})

/**
 * A listener on 127.0.0.1 that counts the connections it gets: the address a rebinding answer
 * points at. `http` answers requests; otherwise every socket is closed at once (an https client
 * then fails fast instead of waiting for a TLS handshake that never comes).
 */
async function forbiddenTarget(http = false) {
  let connections = 0
  const server = http
    ? createHttpServer((req, res) => res.end(`hello from ${req.headers.host}`))
    : createTcpServer((socket) => socket.destroy())
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** A resolver that answers from `answers` in turn (the last one forever) and counts its calls. */
function scriptedResolver(...answers: string[][]) {
  const resolver = {
    calls: 0,
    resolve: async () => answers[Math.min(resolver.calls++, answers.length - 1)] ?? [],
  }
  return resolver
}

describe('connections go only to checked addresses (DNS rebinding)', () => {
  it('resolves a name once, when connecting, and never connects to a forbidden answer', async () => {
    const target = await forbiddenTarget()
    const dns = scriptedResolver(['127.0.0.1'])
    const safe = guardedFetch({ resolve: dns.resolve })
    await expect(safe(`https://rebind.example:${target.port}/`)).rejects.toMatchObject({
      code: 'ERR_UNSAFE_URL',
      message: expect.stringContaining('loopback address (127.0.0.1)'),
    })
    // One resolution: no earlier answer that a later one could differ from.
    expect(dns.calls).toBe(1)
    expect(target.connections).toBe(0)
    await target.close()
  })

  it('a public answer for the check and a loopback one for the connection: refused, also through a caller fetch', async () => {
    const target = await forbiddenTarget()
    const url = `https://rebind.example:${target.port}/`
    // The window the old guard left open: the check alone sees only the public answer.
    await expect(
      assertSafeUrl(url, { resolve: scriptedResolver(['93.184.215.14'], ['127.0.0.1']).resolve }),
    ).resolves.toBeInstanceOf(URL)
    const dns = scriptedResolver(['93.184.215.14'], ['127.0.0.1'])
    const passedOn: typeof fetch = (input, init) => fetch(input, init)
    const safe = guardedFetch({ resolve: dns.resolve }, passedOn)
    await expect(safe(url)).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
    expect(dns.calls).toBe(2)
    expect(target.connections).toBe(0)
    await target.close()
  })

  it.each([
    ['the first address allowed, the second private', ['127.0.0.1', '10.0.0.5']],
    ['the first address private, the second allowed', ['169.254.169.254', '127.0.0.1']],
  ])('refuses a multi-address answer when any address is forbidden (%s)', async (_n, answer) => {
    const target = await forbiddenTarget(true)
    const safe = guardedFetch({ allowLoopbackHttp: true, resolve: async () => answer })
    await expect(safe(`http://localhost:${target.port}/`)).rejects.toMatchObject({
      code: 'ERR_UNSAFE_URL',
      message: expect.stringContaining('private or link-local'),
    })
    expect(target.connections).toBe(0)
    await target.close()
  })

  it('a dispatcher in the caller init cannot route around the check', async () => {
    const target = await forbiddenTarget()
    const unchecked = new Agent({
      connect: {
        lookup: (_host, options, callback) =>
          options.all === true
            ? callback(null, [{ address: '127.0.0.1', family: 4 }])
            : callback(null, '127.0.0.1', 4),
      },
    })
    const safe = guardedFetch({ resolve: async () => ['127.0.0.1'] })
    const init = { dispatcher: unchecked } as RequestInit
    await expect(safe(`https://rebind.example:${target.port}/`, init)).rejects.toMatchObject({
      code: 'ERR_UNSAFE_URL',
    })
    expect(target.connections).toBe(0)
    await unchecked.close()
    await target.close()
  })

  it('without a caller fetch, connects to the answer it checked: no second resolution', async () => {
    const target = await forbiddenTarget(true)
    const dns = scriptedResolver(['127.0.0.1'])
    const safe = guardedFetch({ allowLoopbackHttp: true, resolve: dns.resolve })
    // A loopback name (http allowed in development) that the system resolver does not know: only
    // the guard's checked answer can bring the request to the local server.
    const res = await safe(`http://rebind.localhost:${target.port}/`)
    expect(await res.text()).toBe(`hello from rebind.localhost:${target.port}`)
    expect(dns.calls).toBe(1)
    expect(target.connections).toBe(1)
    await target.close()
  })

  it('in development, a name answering loopback reaches the local server, by that name', async () => {
    const target = await forbiddenTarget(true)
    const dns = scriptedResolver(['127.0.0.1'])
    const safe = guardedFetch({ allowLoopbackHttp: true, resolve: dns.resolve })
    const res = await safe(`http://localhost:${target.port}/`)
    expect(await res.text()).toBe(`hello from localhost:${target.port}`)
    expect(dns.calls).toBe(1)
    expect(target.connections).toBe(1)
    await target.close()
  })
})

describe('guardedFetch: Request inputs and redirects with a body', () => {
  it('sends the method, headers and body of a Request input, init overriding them', async () => {
    const f = await startFake({ '/echo': () => ({ body: { ok: true } }) })
    const safe = guardedFetch({ allowLoopbackHttp: true })
    const request = new Request(`${f.origin}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-test': 'one' },
      body: 'grant_type=client_credentials',
    })
    expect((await safe(request)).status).toBe(200)
    expect(f.requests[0]).toMatchObject({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-test': 'one' },
      body: 'grant_type=client_credentials',
    })
    const again = new Request(`${f.origin}/echo`, { method: 'POST', body: 'a=1' })
    await safe(again, { method: 'PUT', body: 'b=2', headers: { 'x-test': 'two' } })
    expect(f.requests[1]).toMatchObject({
      method: 'PUT',
      body: 'b=2',
      headers: { 'x-test': 'two' },
    })
    await f.close()
  })

  it.each([307, 308])(
    'refuses a %i to another origin for a request with a body, which never leaves home',
    async (status) => {
      const elsewhere = await startFake({ '/token': () => ({ body: { stolen: true } }) })
      const home = await startFake({
        '/token': () => ({ status, headers: { location: `${elsewhere.origin}/token` } }),
      })
      const safe = guardedFetch({ allowLoopbackHttp: true })
      await expect(
        safe(`${home.origin}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'client_secret=s3cret&code_verifier=v3rifier',
        }),
      ).rejects.toMatchObject({
        code: 'ERR_UNSAFE_URL',
        message: expect.stringContaining(`to ${elsewhere.origin}`),
      })
      expect(home.requests).toHaveLength(1)
      expect(elsewhere.requests).toHaveLength(0)
      await home.close()
      await elsewhere.close()
    },
  )

  it('follows a 307 on the same origin with the body, and a 303 elsewhere as a GET without it', async () => {
    const elsewhere = await startFake({ '/landing': () => ({ body: { landed: true } }) })
    const home = await startFake({
      '/old': (_r, o) => ({ status: 307, headers: { location: `${o}/new` } }),
      'POST /new': () => ({ status: 303, headers: { location: `${elsewhere.origin}/landing` } }),
    })
    const safe = guardedFetch({ allowLoopbackHttp: true })
    const res = await safe(`${home.origin}/old`, {
      method: 'POST',
      headers: {
        authorization: 'Basic c2VjcmV0',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'client_secret=s3cret',
    })
    expect(await res.json()).toEqual({ landed: true })
    expect(home.requests.map((r) => [r.method, r.path, r.body])).toEqual([
      ['POST', '/old', 'client_secret=s3cret'],
      ['POST', '/new', 'client_secret=s3cret'],
    ])
    expect(elsewhere.requests).toHaveLength(1)
    const landed = elsewhere.requests[0]!
    expect([landed.method, landed.body]).toEqual(['GET', ''])
    expect(landed.headers.authorization).toBeUndefined()
    expect(landed.headers['content-type']).toBeUndefined()
    await home.close()
    await elsewhere.close()
  })
})

describe('resource coverage', () => {
  it('a token is only for its resource and the paths under it', () => {
    expect(resourceCovers('https://a.example/mcp', 'https://a.example/mcp')).toBe(true)
    expect(resourceCovers('https://a.example', 'https://a.example/mcp')).toBe(true)
    expect(resourceCovers('https://a.example/mcp', 'https://a.example/mcpx')).toBe(false)
    expect(resourceCovers('https://a.example/mcp', 'https://b.example/mcp')).toBe(false)
    expect(resourceCovers('https://a.example/mcp', 'http://a.example/mcp')).toBe(false)
    expect(resourceCovers('https://a.example:8443/mcp', 'https://a.example/mcp')).toBe(false)
  })

  it('sendWithProof refuses to attach a token to another server', async () => {
    const signer = { keyPair: await generateProofKeyPair(), nonces: new DpopNonces() }
    const token = {
      accessToken: 'secret-token',
      tokenType: 'dpop',
      scopes: [],
      issuer: 'https://as.example',
      resource: 'https://a.example/mcp',
    }
    await expect(
      sendWithProof(signer, 'https://b.example/mcp', { method: 'GET' }, token),
    ).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
  })
})

describe('discovery order', () => {
  it('follows the MCP specification for issuers with and without a path', () => {
    expect(authorizationServerMetadataUrls('https://as.example')).toEqual([
      'https://as.example/.well-known/oauth-authorization-server',
      'https://as.example/.well-known/openid-configuration',
    ])
    expect(authorizationServerMetadataUrls('https://as.example/tenant1')).toEqual([
      'https://as.example/.well-known/oauth-authorization-server/tenant1',
      'https://as.example/.well-known/openid-configuration/tenant1',
      'https://as.example/tenant1/.well-known/openid-configuration',
    ])
  })
})

describe('interaction', () => {
  it('opens only https, or http on loopback in development', () => {
    expect(() => assertOpenableUrl(new URL('https://as.example/authorize'), false)).not.toThrow()
    expect(() => assertOpenableUrl(new URL('http://127.0.0.1:4000/auth'), true)).not.toThrow()
    for (const [url, dev] of [
      ['http://127.0.0.1:4000/auth', false],
      ['http://as.example/authorize', true],
      ['file:///etc/passwd', true],
      ['javascript:alert(1)', true],
      ['x-app://callback', true],
    ] as const) {
      expect(() => assertOpenableUrl(new URL(url), dev)).toThrow(/refusing to open/)
    }
  })

  it('the system-browser interaction receives the redirect on its loopback listener', async () => {
    const opened: string[] = []
    const interaction = systemBrowserInteraction({
      open: async (url) => {
        opened.push(url)
        // Play the browser: the authorization server redirects back to the listener.
        const authUrl = new URL(url)
        const cb = new URL(authUrl.searchParams.get('redirect_uri')!)
        cb.searchParams.set('code', 'abc')
        cb.searchParams.set('state', authUrl.searchParams.get('state')!)
        await fetch(cb)
      },
    })
    const redirectUri = await interaction.redirectUri()
    expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
    const auth = new URL('https://as.example/authorize')
    auth.searchParams.set('redirect_uri', redirectUri)
    auth.searchParams.set('state', 's1')
    const callback = await interaction.authorize(auth, { reason: 'authorize' })
    expect(callback.searchParams.get('code')).toBe('abc')
    expect(callback.searchParams.get('state')).toBe('s1')
    expect(opened).toEqual([auth.href])
    await interaction.close()
  })

  it('the system-browser interaction refuses to open an unsafe URL', async () => {
    let opened = false
    const interaction = systemBrowserInteraction({ open: async () => void (opened = true) })
    await expect(
      interaction.authorize(new URL('file:///etc/passwd'), { reason: 'authorize' }),
    ).rejects.toMatchObject({ code: 'ERR_UNSAFE_URL' })
    expect(opened).toBe(false)
    await interaction.close()
  })
})

describe('requests to the MCP server never follow redirects', () => {
  it('a 307 to another origin is returned, not followed, so the token stays home', async () => {
    const elsewhere = await startFake({ '/mcp': () => ({ body: { stolen: true } }) })
    const home = await startFake({
      '/mcp': () => ({ status: 307, headers: { location: `${elsewhere.origin}/mcp` } }),
    })
    const signer = { keyPair: await generateProofKeyPair(), nonces: new DpopNonces() }
    const token = {
      accessToken: 'home-token',
      tokenType: 'dpop',
      scopes: [],
      issuer: 'http://127.0.0.1:1',
      resource: `${home.origin}/mcp`,
    }
    const res = await sendWithProof(
      signer,
      `${home.origin}/mcp`,
      { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) },
      token,
    )
    expect(res.status).toBe(307)
    expect(home.requests[0]?.headers.authorization).toBe('DPoP home-token')
    expect(elsewhere.requests).toHaveLength(0)
    await home.close()
    await elsewhere.close()
  })
})
