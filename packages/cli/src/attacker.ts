/**
 * The demo's second agent, run as its own process: it has its own key, no authorization of its
 * own, and everything a local process could capture from alice's traffic on loopback (her token,
 * her session id, her requests with their proofs). It reads an {@link AttackPlan} on stdin, plays
 * each attack with raw HTTP, and writes an {@link AttackReport} as one JSON line on stdout.
 *
 * Being a separate process is the point: nothing it does can borrow alice's in-memory key, and
 * the server sees exactly what another program on the same machine could send.
 */
import { bindingFor, createProof, jwkThumbprint } from '@callproof/core'
import type { JWK } from 'jose'
import type { AttackPlan, AttackReport, AttackSpec, Captured } from './story.js'
import { mcpHeaders, send as sendOnce } from './wire.js'
import type { Observation, WireExchange, WireRequest } from './wire.js'

type Auth = (message: unknown) => Promise<Record<string, string>>
type Send = (request: WireRequest) => Promise<Observation>

/** Plays every attack of the plan with a fresh key of this process. */
export async function runAttacks(plan: AttackPlan): Promise<AttackReport> {
  // Non-extractable, generated here: the second agent's own identity.
  const keyPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
  const jkt = await jwkThumbprint((await crypto.subtle.exportKey('jwk', keyPair.publicKey)) as JWK)
  const results: Record<string, Observation> = {}
  const exchanges: Record<string, WireExchange[]> = {}
  for (const attack of plan.attacks) {
    // Every request it sends, with the answer: what the lesson shows of each attempt.
    const sent: WireExchange[] = (exchanges[attack.id] = [])
    const send: Send = async (request) => {
      const answer = await sendOnce(request)
      sent.push({ request, answer })
      return answer
    }
    results[attack.id] = await play(attack, plan.captured, keyPair, send)
  }
  return { pid: process.pid, jkt, results, exchanges }
}

async function play(
  attack: AttackSpec,
  captured: Captured,
  keyPair: CryptoKeyPair,
  send: Send,
): Promise<Observation> {
  const { url, accessToken } = captured
  const ownProof = (message: unknown, token?: string) =>
    bindingFor(message).then((mcp) =>
      createProof(keyPair, {
        htm: 'POST',
        htu: url,
        mcp,
        ...(token === undefined ? {} : { accessToken: token }),
      }),
    )
  switch (attack.id) {
    case 'no-credentials':
      // A key proves nothing by itself: a proof without any token is still no authorization.
      return ownSession(send, captured, attack, async (m) => ({ dpop: await ownProof(m) }))
    case 'bearer-token':
      return ownSession(send, captured, attack, () =>
        Promise.resolve({ authorization: `Bearer ${accessToken}` }),
      )
    case 'token-own-proof':
      return ownSession(send, captured, attack, async (m) => ({
        authorization: `DPoP ${accessToken}`,
        dpop: await ownProof(m, accessToken),
      }))
    case 'replay':
      return send(capturedRequest(captured, attack))
    case 'altered-args': {
      const original = capturedRequest(captured, attack)
      const message = JSON.parse(original.body ?? '{}') as { params?: Record<string, unknown> }
      // Same token, same proof, same session: only the argument differs.
      const altered = { ...message, params: { ...message.params, arguments: attack.args } }
      return send({ ...original, body: JSON.stringify(altered) })
    }
  }
}

function capturedRequest(captured: Captured, attack: AttackSpec): WireRequest {
  if (attack.captured === undefined) throw new Error(`attack ${attack.id} needs a captured request`)
  return captured.requests[attack.captured]
}

function toolCall(attack: AttackSpec, id: number) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: attack.tool, arguments: attack.args },
  }
}

/**
 * Opens a session of the attacker's own (initialize → initialized → the tool call) with the given
 * credentials, and returns the first refusal or the tool call's answer.
 */
async function ownSession(
  send: Send,
  captured: Captured,
  attack: AttackSpec,
  auth: Auth,
): Promise<Observation> {
  const { url } = captured
  const initialize = {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: {
      protocolVersion: captured.protocolVersion,
      capabilities: {},
      clientInfo: { name: 'second-agent', version: '0.0.0' },
    },
  }
  const init = await send({
    method: 'POST',
    url,
    headers: mcpHeaders(await auth(initialize)),
    body: JSON.stringify(initialize),
  })
  if (init.status < 200 || init.status >= 300) return init
  const session = {
    'mcp-session-id': init.sessionId,
    'mcp-protocol-version': captured.protocolVersion,
  }
  const initialized = { jsonrpc: '2.0', method: 'notifications/initialized' }
  const ack = await send({
    method: 'POST',
    url,
    headers: mcpHeaders({ ...session, ...(await auth(initialized)) }),
    body: JSON.stringify(initialized),
  })
  if (ack.status < 200 || ack.status >= 300) return ack
  const call = toolCall(attack, 1)
  return send({
    method: 'POST',
    url,
    headers: mcpHeaders({ ...session, ...(await auth(call)) }),
    body: JSON.stringify(call),
  })
}
