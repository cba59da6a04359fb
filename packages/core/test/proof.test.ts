/** verifyProof / createProof / normalizeHtu: every refusal path, each with the code and reason. */
import { base64url } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  CallproofError,
  KeyCache,
  UseNonceError,
  accessTokenHash,
  createProof,
  normalizeHtu,
  verifyProof,
} from '../src/index.js'
import type { VerifyProofOptions } from '../src/index.js'
import { NOW, RESOURCE, clientKeys, clock, publicJwk, signRaw, thumbprintOf } from './helpers.js'

const TOKEN = 'token-abc'
const base: VerifyProofOptions = { htm: 'POST', htu: RESOURCE, accessToken: TOKEN, clock }

async function claims(extra: Record<string, unknown> = {}) {
  return {
    jti: 'jti-1',
    htm: 'POST',
    htu: RESOURCE,
    iat: NOW,
    ath: await accessTokenHash(TOKEN),
    ...extra,
  }
}

async function refused(proof: Promise<string> | string, reason: RegExp, options = base) {
  const err = await verifyProof(await proof, options).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CallproofError)
  expect((err as CallproofError).code).toBe('ERR_INVALID_PROOF')
  expect((err as CallproofError).message).toMatch(reason)
}

describe('createProof + verifyProof', () => {
  it('round-trips an ES256 proof and reports the key thumbprint', async () => {
    const keys = await clientKeys()
    const mcp = { method: 'tools/call', name: 'x', args: 'abc' }
    const proof = await createProof(keys, {
      htm: 'POST',
      htu: RESOURCE,
      accessToken: TOKEN,
      mcp,
      iat: NOW,
      jti: 'j1',
    })
    const verified = await verifyProof(proof, base)
    expect(verified).toEqual({ jkt: await thumbprintOf(keys), jti: 'j1', iat: NOW, mcp })
  })

  it('round-trips Ed25519 under both of its names (EdDSA, Ed25519)', async () => {
    const keys = await clientKeys('Ed25519')
    for (const alg of ['EdDSA', 'Ed25519'] as const) {
      const proof = await createProof(
        keys,
        { htm: 'POST', htu: RESOURCE, accessToken: TOKEN },
        { alg, clock },
      )
      expect((await verifyProof(proof, base)).jkt).toBe(await thumbprintOf(keys))
    }
  })

  it('puts only the public key in the header, even for an extractable key pair', async () => {
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair
    const proof = await createProof(keys, { htm: 'GET', htu: RESOURCE }, { clock })
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(proof.split('.')[0]!)))
    expect(Object.keys(header.jwk).sort()).toEqual(['crv', 'kty', 'x', 'y'])
    expect(header.typ).toBe('dpop+jwt')
  })

  it('gives every proof a fresh jti', async () => {
    const keys = await clientKeys()
    const a = await verifyProof(
      await createProof(keys, { htm: 'POST', htu: RESOURCE }, { clock }),
      { ...base, accessToken: undefined } as never,
    )
    const b = await verifyProof(
      await createProof(keys, { htm: 'POST', htu: RESOURCE }, { clock }),
      { htm: 'POST', htu: RESOURCE, clock },
    )
    expect(a.jti).not.toBe(b.jti)
  })
})

describe('createProof with a known public JWK', () => {
  it('puts only its public members in the header and refuses one that does not fit alg', async () => {
    const keys = await clientKeys()
    const known = { ...(await publicJwk(keys)), d: 'private-looking', ext: true }
    const proof = await createProof(
      keys,
      { htm: 'POST', htu: RESOURCE, accessToken: TOKEN, iat: NOW, jti: 'j1' },
      { publicJwk: known },
    )
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(proof.split('.')[0]!)))
    expect(header.jwk).toEqual(await publicJwk(keys))
    expect((await verifyProof(proof, base)).jkt).toBe(await thumbprintOf(keys))
    const ed = await publicJwk(await clientKeys('Ed25519'))
    await expect(
      createProof(keys, { htm: 'POST', htu: RESOURCE }, { publicJwk: ed }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' })
  })
})

describe('verifyProof refuses', () => {
  it('a missing, oversized or non-JWS proof', async () => {
    await refused('', /missing/)
    await refused('a.b', /compact JWS/)
    await refused(`${'a'.repeat(9000)}.b.c`, /compact JWS/)
    await refused('a b.c.d', /compact JWS/)
  })

  it('a header that is not JSON', async () => {
    await refused(`${base64url.encode('{nope')}.e30.AAAA`, /header/)
  })

  it('a typ other than dpop+jwt', async () => {
    const keys = await clientKeys()
    const jwk = await publicJwk(keys)
    await refused(
      signRaw({ typ: 'JWT', alg: 'ES256', jwk }, await claims(), keys.privateKey),
      /typ/,
    )
    await refused(signRaw({ alg: 'ES256', jwk }, await claims(), keys.privateKey), /typ/)
  })

  it('alg none, HMAC and algorithms outside the allowlist', async () => {
    const keys = await clientKeys()
    const jwk = await publicJwk(keys)
    const enc = (v: unknown) => base64url.encode(JSON.stringify(v))
    await refused(
      `${enc({ typ: 'dpop+jwt', alg: 'none', jwk })}.${enc(await claims())}.`,
      /alg none is not allowed/,
    )
    const hmacKey = await crypto.subtle.importKey(
      'raw',
      new Uint8Array(32),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    )
    const input = `${enc({ typ: 'dpop+jwt', alg: 'HS256', jwk })}.${enc(await claims())}`
    const mac = await crypto.subtle.sign('HMAC', hmacKey, new TextEncoder().encode(input))
    await refused(`${input}.${base64url.encode(new Uint8Array(mac))}`, /alg HS256 is not allowed/)
    await refused(
      signRaw({ typ: 'dpop+jwt', alg: 'ES384', jwk }, await claims(), keys.privateKey),
      /alg ES384 is not allowed/,
    )
    // A configured allowlist is honoured: ES256 only refuses an Ed25519 proof.
    const ed = await clientKeys('Ed25519')
    const edProof = await createProof(
      ed,
      { htm: 'POST', htu: RESOURCE, accessToken: TOKEN },
      { clock },
    )
    await refused(edProof, /alg EdDSA is not allowed/, { ...base, algorithms: ['ES256'] })
  })

  it('a header without jwk, or with a private key in it', async () => {
    const keys = await clientKeys()
    await refused(
      signRaw({ typ: 'dpop+jwt', alg: 'ES256' }, await claims(), keys.privateKey),
      /no jwk/,
    )
    const extractable = (await crypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['sign', 'verify'],
    )) as CryptoKeyPair
    const full = await crypto.subtle.exportKey('jwk', extractable.privateKey)
    await refused(
      signRaw({ typ: 'dpop+jwt', alg: 'ES256', jwk: full }, await claims(), extractable.privateKey),
      /private member d/,
    )
  })

  it('a jwk whose key type does not fit alg, or that is not a valid key', async () => {
    const keys = await clientKeys()
    const jwk = await publicJwk(keys)
    await refused(
      signRaw({ typ: 'dpop+jwt', alg: 'EdDSA', jwk }, await claims(), keys.privateKey),
      /does not fit alg/,
    )
    await refused(
      signRaw(
        { typ: 'dpop+jwt', alg: 'ES256', jwk: { ...jwk, x: 'AAAA' } },
        await claims(),
        keys.privateKey,
      ),
      /not a valid public key/,
    )
    await refused(
      signRaw(
        { typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: jwk.x } },
        await claims(),
        keys.privateKey,
      ),
      /member y/,
    )
  })

  it('a signature by another key than the one in the header', async () => {
    const keys = await clientKeys()
    const other = await clientKeys()
    await refused(
      signRaw(
        { typ: 'dpop+jwt', alg: 'ES256', jwk: await publicJwk(keys) },
        await claims(),
        other.privateKey,
      ),
      /signature/,
    )
  })

  it('a missing or empty jti', async () => {
    const keys = await clientKeys()
    const jwk = await publicJwk(keys)
    await refused(
      signRaw(
        { typ: 'dpop+jwt', alg: 'ES256', jwk },
        await claims({ jti: undefined }),
        keys.privateKey,
      ),
      /jti/,
    )
    await refused(
      signRaw({ typ: 'dpop+jwt', alg: 'ES256', jwk }, await claims({ jti: '' }), keys.privateKey),
      /jti/,
    )
  })

  it('another HTTP method', async () => {
    const keys = await clientKeys()
    const proof = await createProof(keys, {
      htm: 'GET',
      htu: RESOURCE,
      accessToken: TOKEN,
      iat: NOW,
    })
    await refused(proof, /htm GET does not match request method POST/)
  })

  it('another URL, and an htu with query or fragment', async () => {
    const keys = await clientKeys()
    const make = (htu: string) =>
      createProof(keys, { htm: 'POST', htu, accessToken: TOKEN, iat: NOW })
    await refused(make('https://evil.example.com/mcp'), /does not match request URL/)
    await refused(make('https://drive.example.com/MCP'), /does not match/)
    await refused(make('https://drive.example.com/mcp/'), /does not match/)
    await refused(make('http://drive.example.com/mcp'), /does not match/)
    await refused(make(`${RESOURCE}?x=1`), /query or fragment/)
    await refused(make(`${RESOURCE}#`), /query or fragment/)
    await refused(make('not a url'), /not an absolute URL/)
    const jwk = await publicJwk(keys)
    await refused(
      signRaw(
        { typ: 'dpop+jwt', alg: 'ES256', jwk },
        await claims({ htu: undefined }),
        keys.privateKey,
      ),
      /htu is missing/,
    )
  })

  it('accepts an htu that only differs by case of scheme/host, default port or percent-encoding', async () => {
    const keys = await clientKeys()
    for (const htu of ['HTTPS://Drive.Example.COM:443/mcp', 'https://drive.example.com/%6Dcp']) {
      await expect(
        verifyProof(
          await createProof(keys, { htm: 'POST', htu, accessToken: TOKEN, iat: NOW }),
          base,
        ),
      ).resolves.toBeDefined()
    }
  })

  it('a stale or future iat, and accepts the window edges', async () => {
    const keys = await clientKeys()
    const at = (iat: number) =>
      createProof(keys, { htm: 'POST', htu: RESOURCE, accessToken: TOKEN, iat })
    await refused(at(NOW - 61), /past/)
    await refused(at(NOW + 6), /future/)
    await expect(verifyProof(await at(NOW - 60), base)).resolves.toBeDefined()
    await expect(verifyProof(await at(NOW + 5), base)).resolves.toBeDefined()
    await refused(at(NOW - 11), /past/, { ...base, maxAgeSeconds: 10 })
    await refused(at(NOW + 1), /future/, { ...base, futureSkewSeconds: 0 })
    const jwk = await publicJwk(keys)
    await refused(
      signRaw(
        { typ: 'dpop+jwt', alg: 'ES256', jwk },
        await claims({ iat: undefined }),
        keys.privateKey,
      ),
      /iat is missing/,
    )
    await refused(
      signRaw({ typ: 'dpop+jwt', alg: 'ES256', jwk }, await claims({ iat: '1' }), keys.privateKey),
      /iat/,
    )
  })

  it('an ath for another token, or none at all', async () => {
    const keys = await clientKeys()
    await refused(
      createProof(keys, { htm: 'POST', htu: RESOURCE, accessToken: 'other', iat: NOW }),
      /ath/,
    )
    await refused(createProof(keys, { htm: 'POST', htu: RESOURCE, iat: NOW }), /ath/)
  })

  it('a missing or wrong nonce with use_dpop_nonce carrying the nonce to use', async () => {
    const keys = await clientKeys()
    const withNonce = (nonce?: string) =>
      createProof(keys, {
        htm: 'POST',
        htu: RESOURCE,
        accessToken: TOKEN,
        iat: NOW,
        ...(nonce ? { nonce } : {}),
      })
    for (const proof of [await withNonce(), await withNonce('old')]) {
      const err = await verifyProof(proof, { ...base, nonce: 'n-1' }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UseNonceError)
      expect(err).toMatchObject({ code: 'ERR_USE_NONCE', nonce: 'n-1' })
    }
    expect((await verifyProof(await withNonce('n-1'), { ...base, nonce: 'n-1' })).nonce).toBe('n-1')
    const err = await verifyProof(await withNonce('x'), { ...base, nonce: (n) => n === 'y' }).catch(
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'ERR_USE_NONCE', nonce: '' })
    await expect(
      verifyProof(await withNonce('y'), { ...base, nonce: async (n) => n === 'y' }),
    ).resolves.toBeDefined()
    const jwk = await publicJwk(keys)
    await refused(
      signRaw({ typ: 'dpop+jwt', alg: 'ES256', jwk }, await claims({ nonce: 5 }), keys.privateKey),
      /nonce/,
    )
  })

  it('an expired exp or a future nbf when the proof carries them', async () => {
    const keys = await clientKeys()
    const jwk = await publicJwk(keys)
    const h = { typ: 'dpop+jwt', alg: 'ES256', jwk }
    await refused(signRaw(h, await claims({ exp: NOW - 1 }), keys.privateKey), /exp/)
    await refused(signRaw(h, await claims({ exp: 'soon' }), keys.privateKey), /exp/)
    await refused(signRaw(h, await claims({ nbf: NOW + 60 }), keys.privateKey), /nbf/)
    await expect(
      verifyProof(
        await signRaw(h, await claims({ exp: NOW + 60, nbf: NOW - 1 }), keys.privateKey),
        base,
      ),
    ).resolves.toBeDefined()
  })

  it('crit or b64 header members, and a malformed payload or signature', async () => {
    const keys = await clientKeys()
    const jwk = await publicJwk(keys)
    const h = { typ: 'dpop+jwt', alg: 'ES256', jwk }
    await refused(
      signRaw({ ...h, crit: ['x'], x: 1 }, await claims(), keys.privateKey),
      /crit or b64/,
    )
    await refused(
      signRaw({ ...h, b64: false, crit: ['b64'] }, await claims(), keys.privateKey),
      /crit or b64/,
    )
    await refused(signRaw(h, [1, 2], keys.privateKey), /not a JSON object/)
    const good = await signRaw(h, await claims(), keys.privateKey)
    const [eh, ep, es] = good.split('.')
    await refused(`${eh}.${base64url.encode('{not json')}.${es}`, /base64url JSON/)
    await refused(`${eh}.${ep}.${es!.slice(0, 40)}`, /wrong length/)
    await refused(`${eh}.${ep}.`, /wrong length/)
    // A valid signature over other bytes: flip one payload claim, keep the signature.
    const forged = base64url.encode(
      JSON.stringify({ ...(await claims()), htm: 'POST', jti: 'other' }),
    )
    await refused(`${eh}.${forged}.${es}`, /signature verification failed/)
  })
})

describe('KeyCache', () => {
  it('imports a key once and stays bounded', async () => {
    const cache = new KeyCache(2)
    const keys = await clientKeys()
    for (let i = 0; i < 3; i++) {
      const proof = await createProof(keys, {
        htm: 'POST',
        htu: RESOURCE,
        accessToken: TOKEN,
        iat: NOW,
      })
      await verifyProof(proof, { ...base, keyCache: cache })
    }
    expect(cache.size).toBe(1)
    for (let i = 0; i < 3; i++) {
      const proof = await createProof(await clientKeys(), {
        htm: 'POST',
        htu: RESOURCE,
        accessToken: TOKEN,
        iat: NOW,
      })
      await verifyProof(proof, { ...base, keyCache: cache })
    }
    expect(cache.size).toBe(2)
  })

  it('does not let a cached key vouch for a signature by another key', async () => {
    const cache = new KeyCache()
    const keys = await clientKeys()
    const other = await clientKeys()
    await verifyProof(
      await createProof(keys, { htm: 'POST', htu: RESOURCE, accessToken: TOKEN, iat: NOW }),
      { ...base, keyCache: cache },
    )
    await refused(
      signRaw(
        { typ: 'dpop+jwt', alg: 'ES256', jwk: await publicJwk(keys) },
        await claims(),
        other.privateKey,
      ),
      /signature/,
      { ...base, keyCache: cache },
    )
  })
})

describe('normalizeHtu', () => {
  it('normalizes as docs/protocol.md §6.2.1 says', () => {
    expect(normalizeHtu('HTTPS://Drive.Example.COM:443/mcp?x=1#f')).toBe(
      'https://drive.example.com/mcp',
    )
    expect(normalizeHtu('http://127.0.0.1:80/mcp')).toBe('http://127.0.0.1/mcp')
    expect(normalizeHtu('http://127.0.0.1:8080/mcp')).toBe('http://127.0.0.1:8080/mcp')
    expect(normalizeHtu('https://a.example')).toBe('https://a.example/')
    expect(normalizeHtu('https://a.example/a/../%7euser/%2f')).toBe('https://a.example/~user/%2F')
    expect(normalizeHtu('https://user:pw@a.example/x')).toBe('https://a.example/x')
    expect(() => normalizeHtu('/relative')).toThrow(CallproofError)
  })
})
