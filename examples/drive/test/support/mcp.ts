/**
 * An MCP caller that speaks raw JSON-RPC over real HTTP: initialize → notifications/initialized →
 * tools/call, each request with `Authorization: DPoP <token>` and a fresh proof bound to the very
 * message in the body. Every step can be overridden, which is how the refusal tests break one
 * property at a time.
 */
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js'
import { readAnswer } from './http.js'
import type { HttpAnswer } from './http.js'
import { bindingOf, makeProof } from './proof.js'
import type { CallerKey, ProofInput } from './proof.js'
import type { McpBinding } from '@callproof/core'

/** Where the drive listens. */
export interface DriveEndpoint {
  /** The MCP endpoint, `http://127.0.0.1:<port>/mcp`. */
  url: string
  /** The resource URI the tokens' `aud` and the proofs' `htu` name. */
  resource: string
}

/** Per-request overrides; any field left out gets the honest value. */
export interface SendOptions {
  /** Token for the Authorization header (default: the caller's). */
  token?: string
  /** The whole Authorization header value; `null` sends none. */
  authorization?: string | null
  /** The DPoP header: a proof, several (appended, which fetch folds into one line), or `null`. */
  proof?: string | string[] | null
  /** Change the honest proof's inputs (htu, htm, iat, mcp, key, …). */
  proofInput?: Partial<ProofInput> & { key?: CallerKey }
  /** `null` sends no session id even if the caller has one. */
  sessionId?: string | null
  /** Raw body text instead of JSON.stringify(message). */
  rawBody?: string
  headers?: Record<string, string>
  method?: string
}

let nextId = 1

/** A JSON-RPC request object. */
export function rpc(method: string, params?: unknown): Record<string, unknown> {
  return params === undefined
    ? { jsonrpc: '2.0', id: nextId++, method }
    : { jsonrpc: '2.0', id: nextId++, method, params }
}

/** A tools/call request object. */
export function toolCall(name: string, args?: Record<string, unknown>): Record<string, unknown> {
  return rpc('tools/call', args === undefined ? { name } : { name, arguments: args })
}

/** A caller: one key, one token, at most one session. */
export class McpCaller {
  sessionId: string | undefined
  protocolVersion: string = LATEST_PROTOCOL_VERSION
  /** The server's latest `DPoP-Nonce` (RFC 9449 §8), put in every proof; updated from answers. */
  nonce: string | undefined

  constructor(
    readonly drive: DriveEndpoint,
    readonly key: CallerKey,
    public token: string,
  ) {}

  /** The honest proof for a message (or for a GET/DELETE without one). */
  async proofFor(
    htm: string,
    message: Record<string, unknown> | undefined,
    overrides: SendOptions['proofInput'] = {},
    token = this.token,
  ): Promise<string> {
    const { key = this.key, ...rest } = overrides
    let mcp: McpBinding | undefined
    if (message !== undefined) mcp = await bindingOf(message)
    const input: ProofInput = {
      htm,
      htu: this.drive.resource,
      accessToken: token,
      mcp,
      nonce: this.nonce,
      ...rest,
    }
    if ('mcp' in overrides && overrides.mcp === undefined) delete input.mcp
    return makeProof(key, input)
  }

  /** POST one message (or raw body) with honest credentials unless overridden. */
  async send(message: Record<string, unknown> | unknown, options: SendOptions = {}) {
    const method = options.method ?? 'POST'
    const token = options.token ?? this.token
    const headers = new Headers({
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': this.protocolVersion,
    })
    if (method === 'POST') headers.set('content-type', 'application/json')
    const authorization =
      options.authorization === undefined ? `DPoP ${token}` : options.authorization
    if (authorization !== null) headers.set('authorization', authorization)
    let proof = options.proof
    if (proof === undefined) {
      const bound =
        method === 'POST' &&
        message !== null &&
        typeof message === 'object' &&
        !Array.isArray(message)
          ? (message as Record<string, unknown>)
          : undefined
      proof = await this.proofFor(method, bound, options.proofInput, token)
    }
    if (proof !== null) for (const p of [proof].flat()) headers.append('dpop', p)
    const session = options.sessionId === undefined ? this.sessionId : options.sessionId
    if (session !== undefined && session !== null) headers.set('mcp-session-id', session)
    for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value)
    const body = method === 'POST' ? (options.rawBody ?? JSON.stringify(message)) : undefined
    const res = await fetch(this.drive.url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    })
    const nonce = res.headers.get('dpop-nonce')
    if (nonce !== null) this.nonce = nonce
    return readAnswer(res)
  }

  /** initialize + notifications/initialized; keeps the session id and protocol version. */
  async connect(options: SendOptions = {}): Promise<HttpAnswer> {
    const init = rpc('initialize', {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'callproof-drive-tests', version: '0.0.0' },
    })
    let answer = await this.send(init, { ...options, sessionId: null })
    // A server that demands nonces answers the first proof with use_dpop_nonce and a DPoP-Nonce
    // header (RFC 9449 §8); a client retries once with it, as callproof's client does.
    if (
      answer.status === 401 &&
      /error="use_dpop_nonce"/.test(answer.headers.get('www-authenticate') ?? '') &&
      options.proof === undefined
    ) {
      answer = await this.send(init, { ...options, sessionId: null })
    }
    if (answer.status !== 200) return answer
    const session = answer.headers.get('mcp-session-id')
    if (session !== null) this.sessionId = session
    const result = resultOf(answer) as { protocolVersion?: string } | undefined
    if (result?.protocolVersion !== undefined) this.protocolVersion = result.protocolVersion
    const done = await this.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
    if (done.status !== 202 && done.status !== 200) {
      throw new Error(`notifications/initialized answered ${done.status}: ${done.text}`)
    }
    return answer
  }

  /** tools/call on the caller's session (connects first when there is none). */
  async callTool(
    name: string,
    args?: Record<string, unknown>,
    options: SendOptions = {},
  ): Promise<HttpAnswer> {
    if (this.sessionId === undefined) {
      const init = await this.connect()
      if (init.status !== 200) throw new Error(`initialize answered ${init.status}: ${init.text}`)
    }
    return this.send(toolCall(name, args), options)
  }
}

/** The JSON-RPC `result` of the (single) response in an answer. */
export function resultOf(answer: HttpAnswer): unknown {
  const response = answer.messages.find((m) => 'result' in m || 'error' in m)
  return response?.result
}

/** The JSON-RPC `error` of the response in an answer. */
export function rpcErrorOf(answer: HttpAnswer): { code: number; message: string } | undefined {
  const response = answer.messages.find((m) => 'result' in m || 'error' in m)
  return response?.error as { code: number; message: string } | undefined
}

/** The text of a tool result's first text content (throws when the call did not succeed). */
export function toolText(answer: HttpAnswer): string {
  if (answer.status !== 200) throw new Error(`tool call answered ${answer.status}: ${answer.text}`)
  const result = resultOf(answer) as
    { content?: { type: string; text?: string }[]; isError?: boolean } | undefined
  if (result === undefined) throw new Error(`no JSON-RPC result in: ${answer.text}`)
  if (result.isError === true) throw new Error(`tool returned an error: ${JSON.stringify(result)}`)
  const text = result.content?.find((c) => c.type === 'text')?.text
  if (text === undefined) throw new Error(`no text content in: ${JSON.stringify(result)}`)
  return text
}
