/** isLoopbackHost: the one definition of "loopback" every callproof package uses. */
import { describe, expect, it } from 'vitest'
import { isLoopbackHost } from '../src/index.js'

describe('isLoopbackHost', () => {
  it.each<[string, string]>([
    ['localhost', 'the name RFC 6761 §6.3 reserves'],
    ['LocalHost', 'names are case-insensitive'],
    ['localhost.', 'the absolute form of the same name'],
    ['app.localhost', 'a name under .localhost (RFC 6761 §6.3)'],
    ['a.b.LOCALHOST.', 'a deeper name, upper case, absolute'],
    ['127.0.0.1', 'the usual IPv4 loopback'],
    ['127.0.0.2', 'all of 127.0.0.0/8 is loopback, not only 127.0.0.1'],
    ['127.255.255.255', 'the top of 127.0.0.0/8'],
    ['127.1', 'a short IPv4 spelling the URL parser reads as 127.0.0.1'],
    ['0x7f.0.0.1', 'a hexadecimal IPv4 spelling'],
    ['2130706433', 'IPv4 as one number'],
    ['127.0.0.1.', 'IPv4 with a trailing dot (the URL parser drops it)'],
    ['[::1]', 'the IPv6 loopback as URL.hostname gives it'],
    ['::1', 'the IPv6 loopback without brackets'],
    ['0:0:0:0:0:0:0:1', 'the IPv6 loopback uncompressed'],
    ['[::ffff:127.0.0.1]', 'IPv4-mapped loopback, bracketed'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback, unbracketed'],
    ['[::ffff:7f00:1]', 'IPv4-mapped loopback as the URL serializer writes it'],
    ['::FFFF:127.9.9.9', 'IPv4-mapped, upper case, elsewhere in 127.0.0.0/8'],
  ])('%s is loopback (%s)', (host) => {
    expect(isLoopbackHost(host)).toBe(true)
  })

  it.each<[string, string]>([
    ['', 'empty'],
    ['example.com', 'a public name'],
    ['localhost.example', 'localhost as a label of another domain'],
    ['localhostx', 'not the label localhost'],
    ['evillocalhost', 'a suffix without the dot'],
    ['.localhost', 'an empty label'],
    ['a..localhost', 'an empty label inside'],
    ['localhost..', 'two trailing dots'],
    ['l_h.localhost', 'a character DNS names do not have'],
    [' localhost', 'surrounding space'],
    ['localtest.me', 'a public name that happens to resolve to 127.0.0.1 today'],
    ['128.0.0.1', 'just above 127.0.0.0/8'],
    ['126.255.255.255', 'just below 127.0.0.0/8'],
    ['127.0.0.256', 'not an IPv4 address'],
    ['0.0.0.0', 'unspecified, not loopback'],
    ['[::]', 'IPv6 unspecified'],
    ['::', 'IPv6 unspecified, unbracketed'],
    ['::2', 'next to ::1'],
    ['[::127.0.0.1]', 'IPv4-compatible (deprecated; routes elsewhere)'],
    ['::ffff:128.0.0.1', 'IPv4-mapped outside 127.0.0.0/8'],
    ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
    ['[fe80::1%25lo]', 'a zone identifier'],
    ['[::1', 'an unclosed bracket'],
    ['localhost:3000', 'a host with a port'],
    ['127.0.0.1:80', 'an address with a port'],
    ['[::1]:80', 'a bracketed address with a port'],
    ['evil.example@127.0.0.1', 'userinfo: a URL parser would read the host as 127.0.0.1'],
    ['127.0.0.1/evil', 'a path'],
    ['127.0.0.1#', 'a fragment'],
    ['%6cocalhost', 'percent-encoding'],
    ['x'.repeat(300) + '.localhost', 'longer than any host name'],
  ])('%s is not loopback (%s)', (host) => {
    expect(isLoopbackHost(host)).toBe(false)
  })

  it('agrees with what URL.hostname gives for loopback URLs', () => {
    for (const url of [
      'http://127.0.0.1:3000/mcp',
      'http://[::1]:3000/mcp',
      'http://LOCALHOST:3000/',
      'http://app.localhost/',
      'http://[0:0:0:0:0:ffff:127.0.0.1]/',
    ]) {
      expect(isLoopbackHost(new URL(url).hostname), url).toBe(true)
    }
    for (const url of ['http://evil.example/', 'http://[::]/', 'http://127.0.0.1.nip.io/']) {
      expect(isLoopbackHost(new URL(url).hostname), url).toBe(false)
    }
  })

  it('is false for a value that is not a string', () => {
    expect(isLoopbackHost(undefined as never)).toBe(false)
    expect(isLoopbackHost(127 as never)).toBe(false)
  })
})
