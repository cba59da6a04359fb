/**
 * The step-up example: the payments server, the development authorization server, and an agent
 * that goes through a scope grant, an MFA step-up and two per-call approvals, with every
 * challenge shown as it happens.
 *
 * @module
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { connect } from '@callproof/client'
import type { Interaction } from '@callproof/client'
import { devInteraction, startDevAuthServer } from '@callproof/dev-auth-server'
import { PAY_SCOPES, startPaymentsServer } from './server.js'

export { MFA, PAY_SCOPES, startPaymentsServer } from './server.js'

/** One thing that happened, in order: a challenge, an interaction, or a tool answer. */
export type StepUpEvent =
  | { kind: 'challenge'; status: number; error: string }
  | { kind: 'interaction'; reason: string }
  | { kind: 'result'; tool: string; text: string; isError: boolean }
  | { kind: 'refused'; tool: string; message: string }

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Plays the example: balance, add a payee (MFA step-up), pay twice (one approval each), and a
 * third payment whose approval the user denies. `onEvent` sees everything as it happens;
 * `options.sdk` picks the MCP SDK line of the server (`v1`, the default, or `v2`).
 */
export async function runStepUp(
  onEvent: (event: StepUpEvent) => void = () => {},
  options: { sdk?: 'v1' | 'v2' } = {},
): Promise<void> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}/mcp`
  const auth = await startDevAuthServer({
    resources: [{ uri: url, scopes: [...PAY_SCOPES] }],
    logger: { warn: () => undefined },
  })
  const server = startPaymentsServer(port, auth.issuer, options.sdk)
  // Show every challenge the server sends; the client answers them by itself.
  const watching: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    const challenge = response.headers.get('www-authenticate')
    if (challenge !== null && String(input).startsWith(url)) {
      const error = /error="([^"]+)"/.exec(challenge)?.[1] ?? 'no credentials'
      onEvent({ kind: 'challenge', status: response.status, error })
    }
    return response
  }
  let approve = true
  const asAlice = (): Interaction => {
    const headless = devInteraction({ user: 'alice' })
    const denying = devInteraction({ user: 'alice', approve: false })
    return {
      redirectUri: () => headless.redirectUri(),
      authorize: (authorizationUrl, context) => {
        onEvent({ kind: 'interaction', reason: context.reason })
        return (approve ? headless : denying).authorize(authorizationUrl, context)
      },
    }
  }
  const client = await connect(url, {
    interaction: asAlice(),
    fetch: watching,
    development: true,
    // The agent declares that it asks for per-call approvals (RFC 9396 §10).
    registration: { clientMetadata: { authorization_details_types: ['mcp_tool_call'] } },
  })
  const call = async (tool: string, args: Record<string, unknown>) => {
    try {
      const result = await client.callTool({ name: tool, arguments: args })
      const content = result.content as { type: string; text?: string }[]
      onEvent({
        kind: 'result',
        tool,
        text: content.map((c) => c.text ?? '').join(''),
        isError: result.isError === true,
      })
    } catch (error) {
      onEvent({
        kind: 'refused',
        tool,
        message: error instanceof Error ? error.message : String(error),
      })
    }
  }
  try {
    await call('balance', {})
    await call('add_payee', { name: 'bob' })
    await call('pay', { to: 'bob', amount: 100 })
    await call('pay', { to: 'bob', amount: 50 })
    approve = false
    await call('pay', { to: 'bob', amount: 500 })
  } finally {
    await client.close()
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      if ('closeAllConnections' in server) server.closeAllConnections()
    })
    await auth.close()
  }
}
