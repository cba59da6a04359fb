/**
 * The client side of `npm run bench`: MCP SDK clients (`StreamableHTTPClientTransport`) with the
 * credentials each variant needs, and tokens minted locally (no OAuth round trips in the timed
 * part: the benchmark measures calls, not logins).
 */
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import type { CryptoKey, JWK } from 'jose'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createProofFetch, generateProofKeyPair } from '@callproof/client'
import type { TokenSet } from '@callproof/client'
import type { VariantName } from './variants.js'

const SCOPES = ['drive:read', 'drive:write']

/** The test issuer's signing key: the parent mints, the server process serves the public half. */
export interface BenchIssuer {
  publicJwk: JWK
  /** Mints an RFC 9068 access token; bound to `jkt` (cnf.jkt) when given, a bearer token if not. */
  mint(issuer: string, resource: string, clientId: string, jkt?: string): Promise<string>
}

/** A fresh ES256 issuer key. */
export async function createBenchIssuer(): Promise<BenchIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const kid = 'bench-1'
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
  const key: CryptoKey = privateKey
  return {
    publicJwk,
    async mint(issuer, resource, clientId, jkt) {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({
        client_id: clientId,
        scope: SCOPES.join(' '),
        acr: 'urn:callproof:acr:pwd',
        auth_time: now,
        ...(jkt !== undefined ? { cnf: { jkt } } : {}),
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
        .setIssuer(issuer)
        .setSubject('alice')
        .setAudience(resource)
        .setJti(crypto.randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(key)
    },
  }
}

/** HTTP requests sent and refusals (401) received, to show retries (a nonce challenge costs one). */
export interface RequestCounter {
  requests: number
  refused: number
}

/** `fetch`, counting what it sends and every 401 it gets back. */
function countingFetch(counter: RequestCounter): typeof fetch {
  return async (input, init) => {
    counter.requests++
    const response = await fetch(input, init)
    if (response.status === 401) counter.refused++
    return response
  }
}

/**
 * Connects one MCP SDK client to `url` as `variant` expects: nothing (a), `Bearer` (b), or the
 * callproof client's per-request proof fetch over a fresh non-extractable ES256 key (c–e).
 */
export async function connectCaller(
  variant: VariantName,
  url: string,
  issuer: string,
  bench: BenchIssuer,
  index: number,
  counter: RequestCounter,
): Promise<Client> {
  const clientId = `bench-client-${index}`
  const counted = countingFetch(counter)
  let options: ConstructorParameters<typeof StreamableHTTPClientTransport>[1] = { fetch: counted }
  if (variant === 'bearer') {
    const token = await bench.mint(issuer, url, clientId)
    options = { fetch: counted, requestInit: { headers: { authorization: `Bearer ${token}` } } }
  } else if (variant !== 'none') {
    const keyPair = await generateProofKeyPair('ES256')
    const jkt = await calculateJwkThumbprint(
      (await crypto.subtle.exportKey('jwk', keyPair.publicKey)) as JWK,
    )
    const tokens: TokenSet = {
      accessToken: await bench.mint(issuer, url, clientId, jkt),
      tokenType: 'dpop',
      issuer,
      resource: url,
      scopes: SCOPES,
    }
    options = {
      fetch: createProofFetch({ keyPair, fetch: counted }, () => tokens),
    }
  }
  const client = new Client({ name: clientId, version: '0.1.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), options))
  return client
}
