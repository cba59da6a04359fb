/** Starts a Hono app on 127.0.0.1 with a free port. */
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'

export interface Running {
  readonly origin: string
  close(): Promise<void>
}

type Fetch = (r: Request, env?: unknown) => Response | Promise<Response>

/**
 * Listens first (port 0), then builds the fetch handler once the origin is known. The app gets
 * the server's `env` (`{ incoming, outgoing }`), as `serve(app)` gives it.
 */
export async function listen(build: (origin: string) => { fetch: Fetch }): Promise<Running> {
  const slot: { handler?: Fetch } = {}
  const server = serve({
    fetch: (r: Request, env: unknown) => slot.handler!(r, env),
    port: 0,
    hostname: '127.0.0.1',
  })
  await new Promise<void>((resolve) =>
    server.listening ? resolve() : server.once('listening', () => resolve()),
  )
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const app = build(origin)
  slot.handler = (r, env) => app.fetch(r, env)
  return {
    origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        if ('closeAllConnections' in server) server.closeAllConnections()
      }),
  }
}
