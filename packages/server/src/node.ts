/**
 * What the Hono adapter reads straight from Node's `IncomingMessage` when the app runs under
 * `@hono/node-server` (which hands it to the app as `c.env.incoming`): the body and the headers.
 *
 * **Why.** `@hono/node-server` gives the app a lazy `Request`. Reading its headers builds a
 * `Headers` (validating every value again, a cost that grows with the 1–2 KB of `Authorization`
 * and `DPoP`), and reading its body builds a full `Request` with a web stream, an abort signal
 * and a second copy of the headers. Together that costs more than the whole policy step, and
 * Node has already parsed and checked both. Duck-typed: no `node:` import, so the adapter still
 * loads on any runtime, and anything that does not look like Node's request is left alone.
 *
 * @module
 */
import { concat } from './body.js'
import type { BodySource } from './body.js'

/** A request's headers as the pipeline reads them (a `Headers` satisfies it). */
export type RequestHeaders = Pick<Headers, 'get' | 'entries'>

/** What {@link nodeBodySource} needs of Node's `IncomingMessage` (no `node:` import here). */
export interface NodeIncoming {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Node's own listener type
  on(event: string, listener: (...args: any[]) => void): unknown
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Node's own listener type
  off(event: string, listener: (...args: any[]) => void): unknown
  pause(): unknown
  readonly complete: boolean
  readonly readableEnded: boolean
  /** Every header's values as received, by lower-case name (Node ≥ 18.3). */
  readonly headersDistinct: Readonly<Record<string, readonly string[] | undefined>>
}

/**
 * The body of Node's `IncomingMessage`, read directly (`@hono/node-server` hands it to the app
 * as `c.env.incoming`): no web stream, no full `Request` built just to read a few hundred bytes.
 */
export function nodeBodySource(incoming: NodeIncoming): BodySource {
  return (limit) =>
    new Promise<Uint8Array | undefined>((resolve, reject) => {
      if (incoming.readableEnded) {
        reject(new Error('the request body was already read'))
        return
      }
      const chunks: Uint8Array[] = []
      let total = 0
      const stop = () => {
        incoming.off('data', onData)
        incoming.off('end', onEnd)
        incoming.off('error', onError)
        incoming.off('close', onClose)
      }
      const onData = (chunk: Uint8Array) => {
        total += chunk.byteLength
        if (total > limit) {
          stop()
          // Left paused: the server adapter drains or closes the rest after the answer.
          incoming.pause()
          resolve(undefined)
          return
        }
        chunks.push(chunk)
      }
      const onEnd = () => {
        stop()
        resolve(concat(chunks, total))
      }
      const onError = (error: Error) => {
        stop()
        reject(error)
      }
      const onClose = () => {
        stop()
        if (!incoming.complete) reject(new Error('the request was aborted'))
        else resolve(concat(chunks, total))
      }
      incoming.on('data', onData)
      incoming.on('end', onEnd)
      incoming.on('error', onError)
      incoming.on('close', onClose)
    })
}

/**
 * The headers of Node's `IncomingMessage`, read like `Headers`: names are case-insensitive and
 * the values of a header sent more than once are joined with ", " (so two `Authorization`
 * headers read as one malformed value, as with `Headers`, not as the first of them, which is
 * what Node's own `incoming.headers` would keep).
 */
export function nodeHeaders(incoming: NodeIncoming): RequestHeaders {
  const distinct = incoming.headersDistinct
  const get = (name: string): string | null => {
    const values = distinct[name.toLowerCase()]
    return values === undefined ? null : values.join(', ')
  }
  return {
    get,
    *entries(): HeadersIterator<[string, string]> {
      for (const name of Object.keys(distinct).sort()) {
        if (!name.startsWith(':')) yield [name, get(name)!]
      }
    },
  } as RequestHeaders
}

/**
 * Node's `IncomingMessage` of this request, when the app runs under `@hono/node-server` and
 * nobody has started reading its body.
 */
export function nodeIncomingOf(env: unknown): NodeIncoming | undefined {
  const incoming = (env as { incoming?: Partial<NodeIncoming> } | undefined)?.incoming
  return typeof incoming?.on === 'function' &&
    typeof incoming.off === 'function' &&
    typeof incoming.pause === 'function' &&
    incoming.readableEnded === false &&
    typeof incoming.complete === 'boolean' &&
    typeof incoming.headersDistinct === 'object' &&
    incoming.headersDistinct !== null
    ? (incoming as NodeIncoming)
    : undefined
}
