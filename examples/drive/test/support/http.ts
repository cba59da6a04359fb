/**
 * Real HTTP to the drive: MCP JSON-RPC over fetch (Streamable HTTP: JSON or SSE answers), a raw
 * node:http sender for what fetch cannot send (two `DPoP` header lines, odd bytes), and an
 * independent parser of `WWW-Authenticate` (RFC 9110 §11.6.1) so the suite does not trust core's.
 */
import { request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'

/** One HTTP answer, with any JSON-RPC messages it carried (JSON body or SSE events). */
export interface HttpAnswer {
  status: number
  headers: Headers
  text: string
  /** The JSON-RPC messages in the body (a JSON object, or each SSE `data:` event). */
  messages: Record<string, unknown>[]
  /** The body as JSON when it is JSON (e.g. the error body of a refusal). */
  json: unknown
}

/** Parse an SSE stream's events into their JSON `data`. */
export function parseSse(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = []
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n')
    if (data.trim() === '') continue
    try {
      out.push(JSON.parse(data) as Record<string, unknown>)
    } catch {
      // Not JSON: the tests assert on messages, an unparsable event is simply not one.
    }
  }
  return out
}

/** Turn a fetch Response into an HttpAnswer (reads the whole body). */
export async function readAnswer(res: Response): Promise<HttpAnswer> {
  const text = await res.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  const type = res.headers.get('content-type') ?? ''
  let messages: Record<string, unknown>[] = []
  if (type.includes('text/event-stream')) messages = parseSse(text)
  else if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    const o = json as Record<string, unknown>
    if (o.jsonrpc === '2.0') messages = [o]
  }
  return { status: res.status, headers: res.headers, text, messages, json }
}

/** A request sent byte for byte as given, through node:http (duplicate headers allowed). */
export interface RawRequest {
  method: string
  url: string
  /** An array value sends the header once per element (separate header lines). */
  headers: Record<string, string | string[]>
  body?: string | Uint8Array
}

/** Send a raw request and read the whole answer. */
export function rawHttp(req: RawRequest): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(req.url, { method: req.method }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const headers = toHeaders(res.headers)
        const text = Buffer.concat(chunks).toString('utf8')
        const fake = new Response(text, { status: res.statusCode ?? 0, headers })
        resolve(readAnswer(fake).then((a) => ({ ...a, status: res.statusCode ?? 0 })))
      })
    })
    r.on('error', reject)
    for (const [name, value] of Object.entries(req.headers)) r.setHeader(name, value)
    if (req.body !== undefined) r.end(req.body)
    else r.end()
  })
}

function toHeaders(h: IncomingHttpHeaders): Headers {
  const out = new Headers()
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined) continue
    for (const v of Array.isArray(value) ? value : [value]) out.append(name, v)
  }
  return out
}

/** One parsed challenge. */
export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/**
 * Parse a `WWW-Authenticate` value into challenges (RFC 9110 §11.6.1: auth-scheme, then
 * comma-separated auth-params whose values are tokens or quoted strings with `\` escapes).
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = []
  let i = 0
  const s = header
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++
  }
  const readToken = () => {
    const start = i
    while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/.test(s[i]!)) i++
    return s.slice(start, i)
  }
  let current: Challenge | undefined
  while (i < s.length) {
    skipWs()
    if (s[i] === ',') {
      i++
      continue
    }
    const tok = readToken()
    if (tok === '') {
      i++ // skip a stray character rather than loop forever
      continue
    }
    skipWs()
    if (s[i] === '=' && current !== undefined) {
      i++
      skipWs()
      let value = ''
      if (s[i] === '"') {
        i++
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\') i++
          value += s[i] ?? ''
          i++
        }
        i++
      } else {
        value = readToken()
        while (s[i] === '=') value += s[i++] // token68 padding
      }
      current.params[tok.toLowerCase()] = value
    } else {
      current = { scheme: tok, params: {} }
      out.push(current)
    }
  }
  return out
}

/** The DPoP challenge of an answer (the first one with scheme DPoP), or undefined. */
export function dpopChallenge(answer: HttpAnswer): Challenge | undefined {
  const header = answer.headers.get('www-authenticate')
  if (header === null) return undefined
  return parseChallenges(header).find((c) => c.scheme.toLowerCase() === 'dpop')
}
