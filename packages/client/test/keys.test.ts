import { mkdtemp, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  FileKeyStore,
  FileTokenStore,
  generateProofKeyPair,
  loadOrCreateKeyPair,
  MemoryKeyStore,
  MemoryTokenStore,
  proofAlgorithms,
  type TokenSet,
} from '../src/index.js'

describe('keys', () => {
  it('generates non-extractable ES256 (default) and Ed25519 key pairs', async () => {
    const es = await generateProofKeyPair()
    expect(es.privateKey.extractable).toBe(false)
    expect(proofAlgorithms(es)).toEqual(['ES256'])
    await expect(crypto.subtle.exportKey('jwk', es.privateKey)).rejects.toThrow()
    const ed = await generateProofKeyPair('Ed25519')
    expect(ed.privateKey.extractable).toBe(false)
    expect(proofAlgorithms(ed)).toContain('EdDSA')
  })

  it('refuses an unknown algorithm at creation', async () => {
    await expect(generateProofKeyPair('RS256' as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    })
  })

  it('the memory store keeps one non-extractable key per process', async () => {
    const store = new MemoryKeyStore()
    const a = await loadOrCreateKeyPair(store)
    const b = await loadOrCreateKeyPair(store)
    expect(b).toBe(a)
    expect(a.privateKey.extractable).toBe(false)
  })

  it('the file store writes mode 0600 and reloads the same key as non-extractable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'callproof-keys-'))
    const path = join(dir, 'sub', 'key.json')
    const created = await loadOrCreateKeyPair(new FileKeyStore(path))
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700)
    const loaded = await loadOrCreateKeyPair(new FileKeyStore(path))
    expect(loaded.privateKey.extractable).toBe(false)
    const a = await crypto.subtle.exportKey('jwk', created.publicKey)
    const b = await crypto.subtle.exportKey('jwk', loaded.publicKey)
    expect(b.x).toBe(a.x)
    // The reloaded private key signs for the stored public key.
    const data = new TextEncoder().encode('x')
    const sig = await crypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      loaded.privateKey,
      data,
    )
    expect(
      await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, created.publicKey, sig, data),
    ).toBe(true)
  })

  it('a corrupt key file is a typed error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'callproof-keys-'))
    const path = join(dir, 'key.json')
    await import('node:fs/promises').then((fs) => fs.writeFile(path, '{"alg":"ES256"}'))
    await expect(new FileKeyStore(path).load()).rejects.toMatchObject({ code: 'ERR_STORE' })
  })
})

describe('token stores', () => {
  const tokens = (resource: string): TokenSet => ({
    accessToken: `at-${resource}`,
    tokenType: 'dpop',
    scopes: ['a'],
    issuer: 'https://as.example',
    resource,
  })

  it('keys tokens per issuer and resource', async () => {
    const store = new MemoryTokenStore()
    await store.set('https://as.example', 'https://a.example/mcp', tokens('https://a.example/mcp'))
    expect(await store.get('https://as.example', 'https://b.example/mcp')).toBeUndefined()
    expect(await store.get('https://other.example', 'https://a.example/mcp')).toBeUndefined()
    expect((await store.get('https://as.example', 'https://a.example/mcp'))?.accessToken).toBe(
      'at-https://a.example/mcp',
    )
  })

  it('the file store persists with mode 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'callproof-tokens-'))
    const path = join(dir, 'tokens.json')
    const store = await FileTokenStore.open(path)
    await store.set('https://as.example', 'https://a.example/mcp', tokens('https://a.example/mcp'))
    await store.setClient('https://as.example', { clientId: 'c1' })
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const again = await FileTokenStore.open(path)
    expect((await again.get('https://as.example', 'https://a.example/mcp'))?.accessToken).toBe(
      'at-https://a.example/mcp',
    )
    expect((await again.getClient('https://as.example'))?.clientId).toBe('c1')
    expect(await readFile(path, 'utf8')).not.toContain('privateKey')
  })
})

describe('options are validated at creation', () => {
  it('refuses bad options before any request', async () => {
    const { CallproofSession } = await import('../src/index.js')
    const keyPair = await generateProofKeyPair()
    const interaction = { redirectUri: () => 'http://127.0.0.1/cb', authorize: async (u: URL) => u }
    const bad: Array<[string | URL, Record<string, unknown>]> = [
      ['not a url', { keyPair, interaction }],
      ['https://a.example/mcp', { interaction }],
      ['https://a.example/mcp', { keyPair }],
      ['https://a.example/mcp', { keyPair, interaction, scopes: ['a b'] }],
      ['https://a.example/mcp', { keyPair, clientCredentials: { clientId: 'x' } }],
      [
        'https://a.example/mcp',
        { keyPair, interaction, registration: { clientMetadataUrl: 'http://app.example/c.json' } },
      ],
    ]
    for (const [url, options] of bad) {
      expect(() => new CallproofSession(url, options as never)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
      )
    }
  })
})
