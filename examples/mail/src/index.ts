/**
 * A small mail API that the drive's `email_file` tool calls on its caller's behalf: the
 * downstream service of docs/guides/downstream.md.
 *
 * It trusts nothing about who is calling except its own tokens, checked on every request:
 *
 * - `aud` must be this API: the caller's own token for the drive (a *forwarded* token) is refused;
 * - `act` must name an MCP server this API accepts delegated calls from (RFC 8693 §4.1): a token
 *   the user obtained directly, or one issued to another actor, is refused;
 * - the token must be DPoP-bound and come with a fresh proof from that key, never seen before: a
 *   copied token is useless to anyone but the MCP server it was issued to;
 * - `scope` must include `mail:send`.
 *
 * The message is sent *as `sub`*: the API records who it went out for, so a test (or the demo) can
 * see whose authority a call used.
 *
 * @example
 * ```ts
 * const mail = await startMail({ issuer: 'http://127.0.0.1:4000', actors: ['drive-mcp'] })
 * console.log(mail.resource) // http://127.0.0.1:<port>/
 * ```
 * @module
 */
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import { Hono } from 'hono'
import type { Context } from 'hono'
import { CallproofError, MemoryReplayStore, verifyAccessToken, verifyProof } from '@callproof/core'
import { createIssuerKeys } from '@callproof/server'

/** The scope needed to send. */
export const MAIL_SEND = 'mail:send'

/** One message the API sent. */
export interface SentMessage {
  readonly id: string
  /** The user the message was sent for: the token's `sub`. */
  readonly from: string
  /** The MCP server that sent it on the user's behalf: the token's `act.sub`. */
  readonly actor: string
  readonly to: string
  readonly subject: string
  readonly text: string
  /** The `jti` of the token it was sent with. */
  readonly tokenId: string
}

/** A refused request, as the API logged it. */
export interface RefusedRequest {
  readonly status: number
  readonly reason: string
}

/** Options of {@link createMailApp}. */
export interface MailAppOptions {
  /** The authorization server whose tokens are accepted. */
  issuer: string
  /** This API's resource identifier: the `aud` its tokens must name. */
  resource: string
  /** The MCP servers (`act.sub`, their client ids) that may send on a user's behalf. */
  actors: readonly string[]
}

/** The mail API as a Hono app, with what it sent and refused. */
export interface MailApp {
  readonly app: Hono
  /** Every message sent, oldest first. */
  sent(): readonly SentMessage[]
  /** Every refusal, oldest first. */
  refused(): readonly RefusedRequest[]
}

const LIMITS = { to: 256, subject: 200, text: 64 * 1024 } as const

class Refusal extends Error {
  constructor(
    readonly status: 400 | 401 | 403,
    readonly error: string,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Builds the mail API.
 *
 * @example
 * ```ts
 * const mail = createMailApp({ issuer, resource: 'http://127.0.0.1:3100/', actors: ['drive-mcp'] })
 * serve({ fetch: mail.app.fetch, port: 3100, hostname: '127.0.0.1' })
 * ```
 */
export function createMailApp(options: MailAppOptions): MailApp {
  const resource = new URL(options.resource)
  if (!Array.isArray(options.actors) || options.actors.length === 0) {
    throw new TypeError('mail: actors must name at least one MCP server allowed to send')
  }
  const actors = new Set(options.actors)
  const keys = createIssuerKeys([{ issuer: options.issuer }])
  const replay = new MemoryReplayStore()
  const sent: SentMessage[] = []
  const refused: RefusedRequest[] = []
  const app = new Hono()

  async function authorize(c: Context): Promise<{ sub: string; actor: string; jti: string }> {
    const header = c.req.header('authorization') ?? ''
    const match = /^DPoP ([\w.~+/-]+=*)$/.exec(header)
    if (match === null) {
      throw new Refusal(401, 'invalid_token', 'a DPoP-bound access token is required')
    }
    const token = match[1]!
    let claims
    try {
      ;({ claims } = await verifyAccessToken(token, {
        issuers: [options.issuer],
        keys: keys.getKey,
        audience: resource.href,
      }))
    } catch (error) {
      // A forwarded caller token ends here: its audience is the MCP server, not this API.
      const why = error instanceof CallproofError ? error.message : 'not a valid token'
      throw new Refusal(401, 'invalid_token', why)
    }
    const act = (claims as unknown as { act?: { sub?: unknown } }).act
    if (typeof act?.sub !== 'string') {
      throw new Refusal(401, 'invalid_token', 'not a delegated token: it names no actor (act)')
    }
    if (!actors.has(act.sub)) {
      throw new Refusal(403, 'access_denied', `actor ${act.sub} may not send on a user's behalf`)
    }
    if (!(claims.scope ?? '').split(' ').includes(MAIL_SEND)) {
      throw new Refusal(403, 'insufficient_scope', `the token lacks ${MAIL_SEND}`)
    }
    const proofs = c.req.raw.headers.get('dpop')
    if (proofs === null || proofs.includes(',')) {
      throw new Refusal(401, 'invalid_dpop_proof', 'exactly one DPoP proof is required')
    }
    const url = new URL(c.req.url)
    let proof
    try {
      proof = await verifyProof(proofs, {
        htm: c.req.method,
        htu: `${resource.origin}${url.pathname}`,
        accessToken: token,
      })
    } catch (error) {
      const why = error instanceof CallproofError ? error.message : 'invalid proof'
      throw new Refusal(401, 'invalid_dpop_proof', why)
    }
    // The proof's key must be the one the token was issued to: the MCP server's own key.
    if (proof.jkt !== claims.cnf.jkt) {
      throw new Refusal(
        401,
        'invalid_dpop_proof',
        'the proof key is not the key the token is bound to',
      )
    }
    if (!(await replay.consume(`dpop:${proof.jkt}:${proof.jti}`, Date.now() + 120_000))) {
      throw new Refusal(401, 'invalid_dpop_proof', 'this proof was used before')
    }
    return { sub: claims.sub, actor: act.sub, jti: claims.jti }
  }

  const refuse = (c: Context, error: Refusal) => {
    refused.push({ status: error.status, reason: error.message })
    // Messages can quote token claims: printable ASCII only in a header, and bounded.
    const description = error.message.replace(/[^\x20-\x7E]|["\\]/g, '?').slice(0, 200)
    const scheme = `DPoP error="${error.error}", error_description="${description}"`
    return c.json({ error: error.error, error_description: error.message }, error.status, {
      'www-authenticate': scheme,
    })
  }

  app.post('/messages', async (c) => {
    let who
    try {
      who = await authorize(c)
    } catch (error) {
      if (error instanceof Refusal) return refuse(c, error)
      throw error
    }
    const body = (await c.req.json().catch(() => undefined)) as Record<string, unknown> | undefined
    const field = (name: keyof typeof LIMITS) => {
      const value = body?.[name]
      if (typeof value !== 'string' || value === '' || value.length > LIMITS[name]) {
        throw new Refusal(
          400,
          'invalid_request',
          `${name} must be a string of 1 to ${LIMITS[name]} characters`,
        )
      }
      return value
    }
    let message: SentMessage
    try {
      message = {
        id: `m${sent.length + 1}`,
        from: who.sub,
        actor: who.actor,
        to: field('to'),
        subject: field('subject'),
        text: field('text'),
        tokenId: who.jti,
      }
    } catch (error) {
      if (error instanceof Refusal) return refuse(c, error)
      throw error
    }
    sent.push(message)
    return c.json({ id: message.id, from: message.from, to: message.to }, 201)
  })

  return { app, sent: () => [...sent], refused: () => [...refused] }
}

/** Options of {@link startMail}. */
export interface StartMailOptions {
  issuer: string
  actors: readonly string[]
  /** Port on 127.0.0.1 (default 0: a free one). */
  port?: number
}

/** A running mail API. */
export interface RunningMail extends Omit<MailApp, 'app'> {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  /** The resource identifier, `http://127.0.0.1:<port>/`. */
  readonly resource: string
  close(): Promise<void>
}

/**
 * Starts the mail API on 127.0.0.1.
 *
 * @example
 * ```ts
 * const mail = await startMail({ issuer, actors: ['drive-mcp'], port: 0 })
 * await mail.close()
 * ```
 */
export async function startMail(options: StartMailOptions): Promise<RunningMail> {
  let mail: MailApp | undefined
  const server = serve({
    fetch: (request: Request) =>
      mail === undefined ? new Response('starting', { status: 503 }) : mail.app.fetch(request),
    port: options.port ?? 0,
    hostname: '127.0.0.1',
  })
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve()
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()))
      if ('closeAllConnections' in server) server.closeAllConnections()
    })
  try {
    mail = createMailApp({ issuer: options.issuer, resource: `${origin}/`, actors: options.actors })
  } catch (error) {
    await close()
    throw error
  }
  return { origin, resource: `${origin}/`, sent: mail.sent, refused: mail.refused, close }
}
