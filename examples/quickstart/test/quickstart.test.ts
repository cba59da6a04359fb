import { describe, expect, it } from 'vitest'
import { runQuickstart } from '../src/index.js'

describe('quickstart', () => {
  it('signs alice and bob in, and keeps each one’s notes apart', async () => {
    expect(await runQuickstart()).toEqual([
      'alice: buy milk',
      'alice: buy milk | call bob',
      'bob: hello',
    ])
  })
})
