/** The origin policy of a loopback resource, on core's one definition of loopback. */
import * as core from '@callproof/core'
import { describe, expect, it } from 'vitest'
import { isLoopbackHost } from '@callproof/core'
import { checkOrigin, defaultOriginPolicy } from '../src/index.js'

const post = (url: string, headers: Record<string, string>) =>
  new Request(url, { method: 'POST', headers })

describe('isLoopbackHost', () => {
  it('is core’s function, so the server and the other packages agree', () => {
    expect(isLoopbackHost).toBe(core.isLoopbackHost)
    expect(isLoopbackHost('127.0.0.2')).toBe(true)
    expect(isLoopbackHost('0.0.0.0')).toBe(false)
  })
})

describe('defaultOriginPolicy on a loopback resource', () => {
  it.each([
    ['http://127.0.0.2:3000/mcp', '127.0.0.2:3000', 'http://127.0.0.2:3000'],
    ['http://app.localhost:3000/mcp', 'app.localhost:3000', 'http://app.localhost:3000'],
    ['http://[::1]:3000/mcp', '[::1]:3000', 'http://[::1]:3000'],
  ])('%s: its own host and origin pass, a rebinding Host does not', (resource, host, origin) => {
    const policy = defaultOriginPolicy(resource)
    expect(checkOrigin(post(resource, { host, origin }), policy)).toBeUndefined()
    // The other loopback names with the same port stay allowed, another port does not.
    expect(checkOrigin(post(resource, { host: 'localhost:3000' }), policy)).toBeUndefined()
    expect(checkOrigin(post(resource, { host: '127.0.0.1:3001' }), policy)).toMatch(/Host/)
    expect(checkOrigin(post(resource, { host: 'evil.example:3000' }), policy)).toMatch(/Host/)
    expect(
      checkOrigin(post(resource, { host, origin: 'http://evil.example:3000' }), policy),
    ).toMatch(/Origin/)
  })

  it('lists each loopback name once', () => {
    expect(defaultOriginPolicy('http://localhost:3000/mcp').allowedHosts).toEqual([
      'localhost:3000',
      '127.0.0.1:3000',
      '[::1]:3000',
    ])
  })

  it('leaves a public resource without a Host check', () => {
    expect(defaultOriginPolicy('https://localhost.example/mcp').allowedHosts).toBeUndefined()
  })
})
