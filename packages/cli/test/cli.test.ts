import { describe, expect, it } from 'vitest'
import { main, memoryIo } from '../src/index.js'
import { style, wrap } from '../src/io.js'

describe('the callproof command line', () => {
  it.each(['demo', 'dev', 'call', 'bridge', 'inspect', 'audit'])(
    '%s --help prints usage and exits 0',
    async (command) => {
      const io = memoryIo()
      expect(await main([command, '--help'], io)).toBe(0)
      expect(io.stdout.join('\n')).toMatch(new RegExp(`^Usage: callproof ${command}`))
      expect(io.stderr).toEqual([])
    },
  )

  it('prints the overview for --help and `help <command>` for a command', async () => {
    const io = memoryIo()
    expect(await main(['--help'], io)).toBe(0)
    expect(io.stdout.join('\n')).toContain('Commands:')
    const sub = memoryIo()
    expect(await main(['help', 'audit'], sub)).toBe(0)
    expect(sub.stdout.join('\n')).toMatch(/^Usage: callproof audit/)
  })

  it('prints the overview and exits 2 without a command', async () => {
    const io = memoryIo()
    expect(await main([], io)).toBe(2)
    expect(io.stdout.join('\n')).toContain('Commands:')
  })

  it('refuses an unknown command or option in one line with what to do, exit 2', async () => {
    const io = memoryIo()
    expect(await main(['demoo'], io)).toBe(2)
    expect(io.stderr).toEqual(['callproof: unknown command "demoo" — run `callproof --help`'])
    const opt = memoryIo()
    expect(await main(['demo', '--fast'], opt)).toBe(2)
    expect(opt.stderr).toHaveLength(1)
    expect(opt.stderr[0]).toMatch(
      /^callproof: Unknown option '--fast'.* — run `callproof demo --help`$/,
    )
  })

  it('prints the version', async () => {
    const io = memoryIo()
    expect(await main(['--version'], io)).toBe(0)
    expect(io.stdout).toEqual(['0.1.0'])
  })

  it('colours only when allowed', () => {
    expect(style({ color: false }, 'red', 'x')).toBe('x')
    expect(style({ color: true }, 'red', 'x')).toBe('\u001b[31mx\u001b[39m')
  })

  it('wraps long cells at spaces', () => {
    expect(wrap('damaged: README.md overwritten, reports/q3.csv deleted', 20)).toEqual([
      'damaged: README.md',
      'overwritten,',
      'reports/q3.csv',
      'deleted',
    ])
  })
})

describe('callproof bridge: the command line', () => {
  it.each([
    [['bridge'], 'give the callproof server URL'],
    [['bridge', 'ftp://example.com/mcp'], 'must be http(s)'],
    [['bridge', 'http://127.0.0.1:9/mcp', 'extra'], 'unexpected argument "extra"'],
    [['bridge', 'http://127.0.0.1:9/mcp', '--deny'], '--password and --deny need --user'],
    [['bridge', 'http://127.0.0.1:9/mcp', '--listen', 'x'], '--listen must be a number'],
  ])('%j is refused in one line with exit 2', async (argv, message) => {
    const io = memoryIo()
    expect(await main(argv, io)).toBe(2)
    expect(io.stdout).toEqual([])
    expect(io.stderr).toHaveLength(1)
    expect(io.stderr[0]).toContain(message)
    expect(io.stderr[0]).toContain('callproof bridge --help')
  })

  it('says in its help what --listen requires, and why', async () => {
    const io = memoryIo()
    expect(await main(['bridge', '--help'], io)).toBe(0)
    const help = io.stdout.join('\n')
    expect(help).toContain('http://127.0.0.1:<port>/<secret>/mcp')
    expect(help).toContain('any local program')
    expect(help).toMatch(/stdout carries only MCP messages/)
  })
})
