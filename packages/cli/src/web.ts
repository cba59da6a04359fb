/**
 * `callproof demo --web`: plays the story against the insecure baseline and against callproof,
 * then serves the classroom page and the story's JSON on 127.0.0.1 until Ctrl-C. Loopback only,
 * one page and one JSON document, nothing fetched from anywhere else.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { runDemo } from './demo.js'
import { CliError, progress, style } from './io.js'
import type { Io } from './io.js'
import { buildLesson } from './lesson.js'
import type { Lesson } from './lesson.js'
import { safeJson } from './terminal.js'
import { PAGE_CSP, PAGE_HTML } from './web-page.js'

/** A served page: its URL, and how to stop serving it. */
export interface LessonServer {
  readonly url: string
  close(): Promise<void>
}

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-resource-policy': 'same-origin',
}

/**
 * Serves `lesson` on `127.0.0.1:port` (0: any free port): `GET /` the page, `GET /lesson.json`
 * the story. A request naming another host is refused (403): a web page elsewhere cannot reach
 * the story by pointing a DNS name at 127.0.0.1.
 *
 * @example
 * ```ts
 * const server = await serveLesson(lesson)
 * console.log(server.url) // http://127.0.0.1:41234/
 * await server.close()
 * ```
 */
export async function serveLesson(lesson: Lesson, port = 0): Promise<LessonServer> {
  const story = safeJson(lesson)
  let origin = ''
  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const send = (status: number, type: string, body: string, headers = {}) => {
      response.writeHead(status, { ...COMMON_HEADERS, 'content-type': type, ...headers })
      response.end(request.method === 'HEAD' ? undefined : body)
    }
    const host = request.headers.host ?? ''
    if (host !== origin && host !== origin.replace('127.0.0.1', 'localhost')) {
      send(403, 'text/plain; charset=utf-8', 'Forbidden: this page is served to 127.0.0.1 only.\n')
      return
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(405, 'text/plain; charset=utf-8', 'Method Not Allowed\n', { allow: 'GET, HEAD' })
      return
    }
    const path = (request.url ?? '/').split('?')[0]
    if (path === '/') {
      send(200, 'text/html; charset=utf-8', PAGE_HTML, {
        'content-security-policy': PAGE_CSP,
        'x-frame-options': 'DENY',
      })
    } else if (path === '/lesson.json') {
      send(200, 'application/json; charset=utf-8', story)
    } else {
      send(404, 'text/plain; charset=utf-8', 'Not Found\n')
    }
  }
  const server = createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new CliError(`port ${port} on 127.0.0.1 is in use`, { hint: 'pick another --port' })
          : error,
      ),
    )
    server.listen(port, '127.0.0.1', () => resolve())
  })
  origin = `127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: `http://${origin}/`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Plays both modes with every request kept, for the page. */
export async function recordLesson(io: Io): Promise<Lesson> {
  const baseline = await progress(io, 'playing the story against the insecure baseline', () =>
    runDemo({ mode: 'baseline', wire: true }),
  )
  const callproof = await progress(io, 'playing the story against callproof', () =>
    runDemo({ mode: 'callproof', wire: true }),
  )
  return buildLesson(baseline, callproof)
}

/** Runs `callproof demo --web`. */
export async function webCommand(
  io: Io,
  options: { readonly port?: number; readonly served?: (url: string) => Promise<void> },
): Promise<number> {
  const lesson = await recordLesson(io)
  const server = await serveLesson(lesson, options.port ?? 0)
  io.out(`${style(io, 'bold', 'the story, step by step:')} ${server.url}`)
  io.out(style(io, 'dim', '  served on 127.0.0.1 only; open it in a browser. Ctrl-C to stop.'))
  try {
    await (options.served?.(server.url) ??
      new Promise<void>((resolve) => {
        process.once('SIGINT', resolve)
        process.once('SIGTERM', resolve)
      }))
  } finally {
    await server.close()
  }
  return lesson.ok.baseline && lesson.ok.callproof ? 0 : 1
}
