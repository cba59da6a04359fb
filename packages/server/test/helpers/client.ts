/**
 * Test-side requests: real HTTP (or `app.request`) with a fresh DPoP proof bound to each message.
 */
import { bindingFor, createProof } from '@callproof/core'
import type { ClientKey } from './issuer.js'

export const ACCEPT = 'application/json, text/event-stream'

export interface CallInput {
  token?: string
  key?: ClientKey
  message?: unknown
  method?: string
  sessionId?: string
  headers?: Record<string, string>
  /** Build the proof for another message than the one sent. */
  proofMessage?: unknown
  /** Send this raw body instead of JSON.stringify(message). */
  rawBody?: string
}

/** The headers and body of a proven request to `resource`. */
export async function provenRequest(resource: string, input: CallInput): Promise<RequestInit> {
  const method =
    input.method ?? (input.message === undefined && input.rawBody === undefined ? 'GET' : 'POST')
  const headers: Record<string, string> = {
    accept: ACCEPT,
    'mcp-protocol-version': '2025-06-18',
    ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
  }
  if (input.token !== undefined) headers['authorization'] = `DPoP ${input.token}`
  if (input.key !== undefined) {
    const bound = input.proofMessage ?? input.message
    headers['dpop'] = await createProof(input.key.keyPair, {
      htm: method,
      htu: resource,
      ...(input.token !== undefined ? { accessToken: input.token } : {}),
      ...(bound !== undefined && (method === 'POST' || input.proofMessage !== undefined)
        ? { mcp: await bindingFor(bound) }
        : {}),
    })
  }
  if (input.sessionId !== undefined) headers['mcp-session-id'] = input.sessionId
  Object.assign(headers, input.headers)
  return {
    method,
    headers,
    ...(input.rawBody !== undefined
      ? { body: input.rawBody }
      : input.message !== undefined
        ? { body: JSON.stringify(input.message) }
        : {}),
  }
}

let nextId = 1

export function toolCall(name: string, args?: Record<string, unknown>) {
  return {
    jsonrpc: '2.0',
    id: nextId++,
    method: 'tools/call',
    params: { name, ...(args !== undefined ? { arguments: args } : {}) },
  }
}

export function rpc(method: string, params?: Record<string, unknown>) {
  return { jsonrpc: '2.0', id: nextId++, method, ...(params !== undefined ? { params } : {}) }
}

export const INITIALIZE = () =>
  rpc('initialize', {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'test', version: '0.0.0' },
  })

/**
 * A fetch for the SDK client transport that attaches a fresh proof bound to each message: the
 * shape of what @callproof/client does, kept minimal for server tests.
 */
export function dpopFetch(resource: string, token: () => string, key: ClientKey): typeof fetch {
  return async (url, init) => {
    const method = (init?.method ?? 'GET').toUpperCase()
    const body = typeof init?.body === 'string' ? init.body : undefined
    const message = body !== undefined ? (JSON.parse(body) as unknown) : undefined
    const headers = new Headers(init?.headers)
    const accessToken = token()
    headers.set('authorization', `DPoP ${accessToken}`)
    headers.set(
      'dpop',
      await createProof(key.keyPair, {
        htm: method,
        htu: resource,
        accessToken,
        ...(message !== undefined ? { mcp: await bindingFor(message) } : {}),
      }),
    )
    return fetch(url, { ...init, headers })
  }
}
