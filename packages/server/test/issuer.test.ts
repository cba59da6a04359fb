import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jwtVerify } from 'jose'
import { assertSecureUrl, createIssuerKeys, discoverIssuer, discoveryUrls } from '../src/index.js'
import { startIssuer } from './helpers/issuer.js'
import type { TestIssuer } from './helpers/issuer.js'

let issuer: TestIssuer
beforeAll(async () => {
  issuer = await startIssuer()
})
afterAll(async () => issuer.close())

describe('assertSecureUrl', () => {
  it('lets keys travel over http only to loopback that no resolver is asked about', () => {
    for (const ok of [
      'http://127.0.0.1:4000',
      'http://127.1.2.3',
      'http://[::1]:4000',
      'http://localhost:4000',
      'http://LOCALHOST.',
      'https://as.example',
    ]) {
      expect(() => assertSecureUrl(ok, 'issuer'), ok).not.toThrow()
    }
    // Loopback by RFC 6761, but Node asks the system resolver, which may ask DNS.
    for (const refused of [
      'http://as.localhost:4000',
      'http://a.b.localhost',
      'http://as.example',
    ]) {
      expect(() => assertSecureUrl(refused, 'issuer'), refused).toThrow(/must use https/)
    }
  })
})

describe('discovery', () => {
  it('derives RFC 8414 (path-inserted) then OpenID (appended) URLs', () => {
    expect(discoveryUrls('https://as.example/tenant/')).toEqual([
      'https://as.example/.well-known/oauth-authorization-server/tenant',
      'https://as.example/tenant/.well-known/openid-configuration',
    ])
    expect(discoveryUrls('https://as.example')).toEqual([
      'https://as.example/.well-known/oauth-authorization-server',
      'https://as.example/.well-known/openid-configuration',
    ])
  })

  it('reads RFC 8414 metadata and its jwks_uri', async () => {
    const metadata = await discoverIssuer(issuer.issuer)
    expect(metadata.issuer).toBe(issuer.issuer)
    expect(metadata.jwks_uri).toBe(`${issuer.issuer}/jwks`)
  })

  it('refuses metadata whose issuer is not the configured issuer', async () => {
    issuer.metadataIssuer = 'http://127.0.0.1:1'
    try {
      await expect(discoverIssuer(issuer.issuer)).rejects.toThrow(/names issuer .* expected/)
      // and no key of that issuer is trusted
      const keys = createIssuerKeys([{ issuer: issuer.issuer }])
      const token = await issuer.mint({ aud: 'x', cnf: { jkt: 'x' } })
      await expect(jwtVerify(token, keys.getKey)).rejects.toThrow(/names issuer/)
    } finally {
      issuer.metadataIssuer = undefined
    }
  })

  it('falls back to OpenID Connect discovery', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ issuer: origin, jwks_uri: `${origin}/keys` }))
      } else {
        res.writeHead(404)
        res.end()
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      expect((await discoverIssuer(origin)).jwks_uri).toBe(`${origin}/keys`)
    } finally {
      server.close()
    }
  })

  it('refuses plain HTTP issuers off loopback', async () => {
    await expect(discoverIssuer('http://as.example')).rejects.toThrow(/https/)
    expect(() => createIssuerKeys([{ issuer: 'http://as.example' }])).toThrow(/https/)
  })
})

describe('keys', () => {
  it('verifies tokens of a trusted issuer and refuses an untrusted iss', async () => {
    const keys = createIssuerKeys([{ issuer: issuer.issuer }])
    const token = await issuer.mint({})
    await expect(jwtVerify(token, keys.getKey)).resolves.toBeTruthy()
    const foreign = await issuer.mint({ iss: 'http://127.0.0.1:9' })
    await expect(jwtVerify(foreign, keys.getKey)).rejects.toThrow(/not trusted/)
  })

  it('picks up a rotated key (new kid) after the cooldown, without a restart', async () => {
    const keys = createIssuerKeys([{ issuer: issuer.issuer }], { cooldownMs: 50 })
    await jwtVerify(await issuer.mint({}), keys.getKey)
    const fetchesBefore = issuer.requests.filter((p) => p === '/jwks').length
    await issuer.rotate()
    await new Promise((resolve) => setTimeout(resolve, 80))
    const rotated = await issuer.mint({})
    await expect(jwtVerify(rotated, keys.getKey)).resolves.toBeTruthy()
    expect(issuer.requests.filter((p) => p === '/jwks').length).toBe(fetchesBefore + 1)
  })

  it('does not refetch the key set for every unknown kid inside the cooldown', async () => {
    const keys = createIssuerKeys([{ issuer: issuer.issuer }], { cooldownMs: 60_000 })
    await jwtVerify(await issuer.mint({}), keys.getKey)
    const fetchesBefore = issuer.requests.filter((p) => p === '/jwks').length
    for (let i = 0; i < 5; i++) {
      const unknown = await issuer.mint({}, { kid: `random-${i}` })
      await expect(jwtVerify(unknown, keys.getKey)).rejects.toThrow()
    }
    expect(issuer.requests.filter((p) => p === '/jwks').length).toBe(fetchesBefore)
  })

  it('uses a configured jwksUri without discovery', async () => {
    const requestsBefore = issuer.requests.length
    const keys = createIssuerKeys([{ issuer: issuer.issuer, jwksUri: `${issuer.issuer}/jwks` }])
    await jwtVerify(await issuer.mint({}), keys.getKey)
    expect(issuer.requests.slice(requestsBefore)).toEqual(['/jwks'])
  })
})
