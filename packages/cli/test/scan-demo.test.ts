import { describe, expect, it } from 'vitest'
import { main, memoryIo } from '../src/index.js'

describe('callproof demo --insecure', () => {
  it('ends with a scan of a fresh insecure baseline, every applicable finding shown', async () => {
    const io = memoryIo()
    const code = await main(['demo', '--insecure'], io)
    expect(code).toBe(0)
    const out = io.stdout.join('\n')
    const scan = out.slice(out.indexOf('$ callproof scan'))
    expect(scan).toContain('callers: A (--login as alice), B (--login as bob)')
    expect(scan).toContain('6 vulnerable, 1 ok, 0 skipped')
    expect(scan.match(/✗ VULNERABLE/g)).toHaveLength(6)
    expect(scan).toContain('What the findings mean')
  })
})
