import { describe, expect, it } from 'vitest'
import { runStepUp } from '../src/index.js'
import type { StepUpEvent } from '../src/index.js'

describe.each(['v1', 'v2'] as const)('step-up example on SDK %s', (sdk) => {
  it('steps up to MFA for add_payee, asks one approval per payment, and honours a denial', async () => {
    const events: StepUpEvent[] = []
    await runStepUp((e) => events.push(e), { sdk })
    const line = (e: StepUpEvent) =>
      e.kind === 'challenge'
        ? `${e.status} ${e.error}`
        : e.kind === 'interaction'
          ? `ask ${e.reason}`
          : e.kind === 'result'
            ? `${e.tool}: ${e.text}`
            : `${e.tool} refused`
    expect(events.map(line)).toEqual([
      '401 no credentials',
      'ask authorize',
      'balance: balance: 1000',
      '401 insufficient_user_authentication',
      'ask step_up',
      'add_payee: added payee bob',
      '403 insufficient_authorization_details',
      'ask approval',
      'pay: paid 100 to bob; balance 900',
      // The first approval served its one call: the second payment needs its own.
      '403 insufficient_authorization_details',
      'ask approval',
      'pay: paid 50 to bob; balance 850',
      '403 insufficient_authorization_details',
      'ask approval',
      'pay refused',
    ])
  })
})
