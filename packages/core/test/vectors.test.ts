/**
 * Published test vectors: RFC 7638 (JWK thumbprint), RFC 8785 (JCS, through argsDigest's
 * canonicalizer) and RFC 9449 (ath, thumbprint and the example proofs, verified with the clock set
 * to the examples' time).
 */
import canonicalize from 'canonicalize'
import { base64url } from 'jose'
import { describe, expect, it } from 'vitest'
import { accessTokenHash, argsDigest, jwkThumbprint, verifyProof } from '../src/index.js'

describe('RFC 7638 §3.1 thumbprint example', () => {
  it('computes NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs', async () => {
    const jwk = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
      alg: 'RS256',
      kid: '2011-04-29',
    }
    expect(await jwkThumbprint(jwk)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
  })
})

describe('RFC 8785 (JCS)', () => {
  it('§3.2.2 serialization example', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`
    expect(canonicalize(JSON.parse(input))).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    )
  })

  it('§3.2.3 sorts properties by UTF-16 code units', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`
    const text = canonicalize(JSON.parse(input))!
    // Read the order off the text: a JS object would list the integer-like key "1" first.
    const order = [...text.matchAll(/:"([^"]*)"/g)].map((m) => m[1])
    expect(order).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ])
  })

  const appendixB: Array<[string, string]> = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ]
  it.each(appendixB)('Appendix B: 0x%s → %s', (bits, text) => {
    const view = new DataView(new ArrayBuffer(8))
    view.setBigUint64(0, BigInt(`0x${bits}`))
    expect(canonicalize(view.getFloat64(0))).toBe(text)
  })

  it('Appendix B: NaN and Infinity are errors, and argsDigest refuses them as a malformed body', async () => {
    expect(() => canonicalize(NaN)).toThrow()
    expect(() => canonicalize(Infinity)).toThrow()
    await expect(argsDigest({ x: Infinity })).rejects.toMatchObject({ code: 'ERR_MALFORMED_BODY' })
    await expect(argsDigest({ x: '\ud800' })).rejects.toMatchObject({ code: 'ERR_MALFORMED_BODY' })
  })

  it('argsDigest is the same on both sides of the JS / Web Crypto size split (16 KiB)', async () => {
    for (const size of [100, 16 * 1024 - 12, 16 * 1024 - 11, 16 * 1024 + 100, 200_000]) {
      const args = { content: 'x'.repeat(size) }
      const bytes = new TextEncoder().encode(canonicalize(args)!)
      const expected = base64url.encode(
        new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)),
      )
      expect(await argsDigest(args), `size ${bytes.length}`).toBe(expected)
    }
  })

  it('argsDigest is the base64url SHA-256 of the canonical text, {} when absent', async () => {
    // b64u(SHA-256("{}")), the value docs/protocol.md quotes.
    expect(await argsDigest(undefined)).toBe('RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o')
    expect(await argsDigest(null)).toBe('RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o')
    expect(await argsDigest({})).toBe('RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o')
    // Key order and number spelling on the wire do not matter.
    expect(await argsDigest(JSON.parse('{"b":1.0,"a":"x"}'))).toBe(
      await argsDigest(JSON.parse('{"a":"x","b":1}')),
    )
    expect(await argsDigest({ a: 'x' })).not.toBe(await argsDigest({ a: 'y' }))
  })
})

/*
 * RFC 9449's examples. The values below are the RFC's (§4.1 figure 4 / §5 token request proof,
 * §7.1 figure 13 resource proof, §6.1 `jkt`); the two proofs are ES256 signatures that verify
 * under the key in their own header, so a transcription error would fail the test.
 */
const RFC9449_TOKEN_PROOF =
  'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg'
const RFC9449_RESOURCE_PROOF =
  'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA'
const RFC9449_TOKEN = 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU'
const RFC9449_JKT = '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I'

describe('RFC 9449 examples', () => {
  it('ath of the §7.1 access token', async () => {
    expect(await accessTokenHash(RFC9449_TOKEN)).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo')
  })

  it('jkt of the example key (§6.1)', async () => {
    expect(
      await jwkThumbprint({
        kty: 'EC',
        x: 'l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs',
        y: '9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA',
        crv: 'P-256',
      }),
    ).toBe(RFC9449_JKT)
  })

  it('verifies the token request proof at its own time', async () => {
    const proof = await verifyProof(RFC9449_TOKEN_PROOF, {
      htm: 'POST',
      htu: 'https://server.example.com/token',
      clock: () => 1562262616_000 + 2_000,
    })
    expect(proof).toMatchObject({ jkt: RFC9449_JKT, jti: '-BwC3ESc6acc2lTc', iat: 1562262616 })
  })

  it('verifies the protected resource proof with its ath', async () => {
    const proof = await verifyProof(RFC9449_RESOURCE_PROOF, {
      htm: 'GET',
      htu: 'https://resource.example.org/protectedresource',
      accessToken: RFC9449_TOKEN,
      clock: () => 1562262618_000,
    })
    expect(proof).toMatchObject({ jkt: RFC9449_JKT, jti: 'e1j3V_bKic8-LAEB', iat: 1562262618 })
  })

  it('refuses the same example proofs once their time has passed, or for another token', async () => {
    await expect(
      verifyProof(RFC9449_RESOURCE_PROOF, {
        htm: 'GET',
        htu: 'https://resource.example.org/protectedresource',
        accessToken: RFC9449_TOKEN,
        clock: () => 1562262618_000 + 61_000,
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_PROOF' })
    await expect(
      verifyProof(RFC9449_RESOURCE_PROOF, {
        htm: 'GET',
        htu: 'https://resource.example.org/protectedresource',
        accessToken: `${RFC9449_TOKEN}x`,
        clock: () => 1562262618_000,
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_PROOF', message: expect.stringContaining('ath') })
  })
})
