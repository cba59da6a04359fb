/**
 * A payments server whose tools ask for more than a token, each in its own way:
 *
 * - `balance`: the `pay:read` scope is enough;
 * - `add_payee`: a multi-factor sign-in (`acr`) no older than 60 seconds (`max_age`): the client is
 *   sent back to sign in again with MFA (RFC 9470 step-up) when its login is weaker or older;
 * - `pay`: the user approves *this* payment — this recipient, this amount — and the approval is a
 *   one-time token that serves exactly that call (RFC 9396 `authorization_details`).
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { z } from 'zod'
import { callerOf, createCallproof, createToolRegistry } from '@callproof/server'
import { createCallproof as createCallproofOnV2 } from '@callproof/server/v2'

/** The multi-factor authentication level of the development authorization server. */
export const MFA = 'urn:callproof:acr:mfa'

/** The scopes the payments server understands. */
export const PAY_SCOPES = ['pay:read', 'pay:send', 'pay:admin'] as const

const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] })

/**
 * Starts the payments server on 127.0.0.1:`port`, trusting tokens from `issuer`, on the MCP SDK
 * line `sdk` (default v1; the tools are the same on both).
 */
export function startPaymentsServer(port: number, issuer: string, sdk: 'v1' | 'v2' = 'v1') {
  const accounts = new Map<string, { balance: number; payees: Set<string> }>()
  const account = (sub: string) => {
    let a = accounts.get(sub)
    if (a === undefined) accounts.set(sub, (a = { balance: 1000, payees: new Set() }))
    return a
  }
  const tools = createToolRegistry({ name: 'payments', version: '1.0.0' })
  tools.register('balance', { policy: { scopes: ['pay:read'] } }, (extra) =>
    text(`balance: ${account(callerOf(extra).sub).balance}`),
  )
  tools.register(
    'add_payee',
    {
      description: 'Add someone you can pay (needs a multi-factor sign-in within the last minute).',
      inputSchema: { name: z.string().min(1) },
      policy: { scopes: ['pay:admin'], acr: [MFA], maxAge: 60 },
    },
    ({ name }, extra) => {
      account(callerOf(extra).sub).payees.add(name)
      return text(`added payee ${name}`)
    },
  )
  tools.register(
    'pay',
    {
      description: 'Pay a payee (you approve each payment).',
      inputSchema: { to: z.string(), amount: z.number().int().positive() },
      policy: { scopes: ['pay:send'], approval: 'per-call' },
    },
    ({ to, amount }, extra) => {
      const a = account(callerOf(extra).sub)
      if (!a.payees.has(to)) return { ...text(`${to} is not a payee`), isError: true }
      if (amount > a.balance) return { ...text('insufficient funds'), isError: true }
      a.balance -= amount
      return text(`paid ${amount} to ${to}; balance ${a.balance}`)
    },
  )
  const app = new Hono()
  const create = sdk === 'v2' ? createCallproofOnV2 : createCallproof
  create({ resource: `http://127.0.0.1:${port}/mcp`, issuers: issuer, tools }).mount(app)
  return serve({ fetch: app.fetch, port, hostname: '127.0.0.1' })
}
