/**
 * What "loopback" means, once, for every callproof package: where plain `http:` and other
 * development relaxations are allowed, and which resources need the DNS-rebinding `Host` check.
 *
 * @module
 */

/** The characters of a host name or address literal: anything else is not a host (`a@b`, `a/b`, `a:80`). */
const HOST_SYNTAX = /^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9.-]+)$/
const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/
/** `localhost` or a name under it, each label 1–63 letters, digits or hyphens, as DNS spells it. */
const LOCALHOST_NAME = /^(?:[a-z0-9-]{1,63}\.)*localhost\.?$/
/** `::ffff:127.0.0.0/104` as the WHATWG URL serializer writes it (`[::ffff:7f00:1]`). */
const MAPPED_LOOPBACK = /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/

/**
 * True when `hostname` names this machine's loopback interface by its spelling alone:
 *
 * - `localhost` and every name under `.localhost` (`app.localhost`), in any case, with or without
 *   the trailing dot of an absolute name: RFC 6761 §6.3 reserves the whole domain for loopback,
 *   and browsers answer it themselves without asking DNS, so a page cannot rebind it;
 * - an IPv4 address in `127.0.0.0/8` (all of it is loopback, RFC 1122 §3.2.1.3, not only
 *   127.0.0.1), in any spelling the WHATWG URL parser reads as one (`127.1`, `0x7f.0.0.1`);
 * - the IPv6 loopback `::1` with or without brackets (`[::1]` is how `URL.hostname` gives it) and
 *   in any spelling (`0:0:0:0:0:0:0:1`), and an IPv4-mapped loopback (`::ffff:127.0.0.1`), which a
 *   dual-stack socket connects to 127.0.0.1.
 *
 * Everything else is false, in particular: `0.0.0.0` and `::` (unspecified: they reach the
 * machine on some systems, but are not loopback and are refused as destinations by the client),
 * the deprecated IPv4-compatible `::127.0.0.1` and NAT64 forms (they route elsewhere), names that
 * merely resolve to 127.0.0.1 today (`localtest.me`: DNS is someone else's to change), and any
 * string that is not a bare host (`localhost:3000`, `evil@127.0.0.1`, `127.0.0.1/x`).
 *
 * Pass a URL's `hostname`. This decides by the name, not by resolving it: a Node process asks the
 * system resolver for `.localhost` names and `localhost.`, which some systems send to DNS, so code
 * that connects by such a name should also check the address it connects to (the client's guarded
 * fetch refuses a loopback name that resolves elsewhere).
 *
 * @example
 * ```ts
 * isLoopbackHost(new URL('http://[::1]:3000/mcp').hostname) // true
 * isLoopbackHost('127.0.0.2') // true
 * isLoopbackHost('localhost.example') // false
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6761#section-6.3
 * @see https://www.rfc-editor.org/rfc/rfc1122#section-3.2.1.3
 * @see https://www.rfc-editor.org/rfc/rfc4291#section-2.5.3
 * @see https://url.spec.whatwg.org/#host-parsing
 */
export function isLoopbackHost(hostname: string): boolean {
  if (typeof hostname !== 'string' || hostname.length === 0 || hostname.length > 255) return false
  if (!HOST_SYNTAX.test(hostname)) return false
  // The WHATWG host parser, the one every fetch uses, gives one spelling per address: lower case,
  // IPv4 in dotted decimal, IPv6 compressed and bracketed.
  const literal = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname
  let host: string
  try {
    host = new URL(`http://${literal}/`).hostname
  } catch {
    return false
  }
  if (host.startsWith('[')) return host === '[::1]' || MAPPED_LOOPBACK.test(host)
  if (IPV4.test(host)) return host.startsWith('127.')
  return LOCALHOST_NAME.test(host)
}
