import { describe, expect, it } from 'vitest'
import {
  assertOpenableUrl,
  assertSafeUrl,
  authorizationServerMetadataUrls,
  DpopNonces,
  generateProofKeyPair,
  guardedFetch,
  isLoopbackHost,
  resourceCovers,
  sendWithProof,
  systemBrowserInteraction,
} from '../src/index.js'
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
  ])('refuses %s', async (_name, url) => {
    await expect(assertSafeUrl(url, publicResolver)).rejects.toMatchObject({
      code: 'ERR_UNSAFE_URL',
    })
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
