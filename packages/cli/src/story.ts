/**
 * The demo's story as data: alice's steps, the second agent's attacks, and what each is expected
 * to end in against callproof and against the insecure baseline. `demo.ts` plays it; the attacks
 * themselves run in a separate process (`attacker.ts`).
 */
import type { Observation, WireRequest } from './wire.js'
import { toolFailed } from './wire.js'

/** Which server the story is played against. */
export type DemoMode = 'callproof' | 'baseline'

/** The second agent's attempts to ride on alice's authorization. */
export type AttackId =
  'no-credentials' | 'bearer-token' | 'token-own-proof' | 'session' | 'replay' | 'altered-args'

/** One attack: what the second agent tries, and with what. */
export interface AttackSpec {
  readonly id: AttackId
  /** The row's title in the table. */
  readonly title: string
  /** The narration line. */
  readonly story: string
  /** The tool it calls (for replay: the captured call it re-sends). */
  readonly tool: string
  readonly args: Record<string, unknown>
  /** For `replay` / `altered-args`: which of alice's captured requests is re-used. */
  readonly captured?: 'write' | 'delete'
  /** The refusal callproof gives: HTTP status, challenge `error` ('' = none) and callproof code. */
  readonly refusal: { status: number; challenge: string; code: string }
}

/** The files and contents alice's steps use. */
export const PLAN = {
  read: 'notes/todo.txt',
  write: { path: 'notes/plan.md', content: '# Plan\n\nLaunch on Friday.\n' },
  delete: 'notes/todo.txt',
  share: { path: 'notes/plan.md', with: 'bob' },
} as const

/** The attacks in the order they are played. Targets differ so each leaves its own trace. */
export const ATTACKS: readonly AttackSpec[] = [
  {
    id: 'no-credentials',
    title: 'own key, no authorization: read_file reports/q3.csv',
    story:
      'connects with its own key and no token of its own, hoping the server still acts for alice',
    tool: 'read_file',
    args: { path: 'reports/q3.csv' },
    refusal: { status: 401, challenge: '', code: 'ERR_NO_CREDENTIALS' },
  },
  {
    id: 'bearer-token',
    title: 'alice’s token as Bearer: share_file reports/q3.csv → mallory',
    story: 'presents a copy of alice’s access token as a plain Bearer token',
    tool: 'share_file',
    args: { path: 'reports/q3.csv', with: 'mallory' },
    refusal: { status: 401, challenge: 'invalid_token', code: 'ERR_BEARER_NOT_ALLOWED' },
  },
  {
    id: 'token-own-proof',
    title: 'alice’s token + a proof from its own key: write_file README.md',
    story: 'presents alice’s token with a perfectly valid proof signed by its own key',
    tool: 'write_file',
    args: { path: 'README.md', content: 'pwned by the second agent\n' },
    refusal: { status: 401, challenge: 'invalid_dpop_proof', code: 'ERR_INVALID_PROOF' },
  },
  {
    id: 'session',
    title: 'alice’s session id, no credentials: delete_file reports/q3.csv',
    story: 'sends a call on alice’s open MCP session (Mcp-Session-Id), without credentials',
    tool: 'delete_file',
    args: { path: 'reports/q3.csv' },
    refusal: { status: 401, challenge: '', code: 'ERR_NO_CREDENTIALS' },
  },
  {
    id: 'replay',
    title: 'replay alice’s captured write_file request',
    story: 'sends alice’s captured write_file request again, byte for byte (token, proof, body)',
    tool: 'write_file',
    args: PLAN.write,
    captured: 'write',
    refusal: { status: 401, challenge: 'invalid_dpop_proof', code: 'ERR_REPLAY' },
  },
  {
    id: 'altered-args',
    title: 'alice’s MFA delete proof, other path: delete_file notes/plan.md',
    story:
      'takes alice’s captured, MFA-strength delete_file request and changes only the path argument',
    tool: 'delete_file',
    args: { path: 'notes/plan.md' },
    captured: 'delete',
    refusal: { status: 401, challenge: 'invalid_dpop_proof', code: 'ERR_BINDING_MISMATCH' },
  },
]

/** What alice's agent hands the second agent: everything a sniffer on loopback would see. */
export interface Captured {
  readonly url: string
  readonly accessToken: string
  readonly sessionId: string
  readonly protocolVersion: string
  readonly requests: { readonly write: WireRequest; readonly delete: WireRequest }
}

/** The plan sent to the attacker process on stdin. */
export interface AttackPlan {
  readonly captured: Captured
  readonly attacks: readonly AttackSpec[]
}

/** The attacker process's answer on stdout. */
export interface AttackReport {
  readonly pid: number
  /** The thumbprint of the attacker's own key (it never had alice's). */
  readonly jkt: string
  readonly results: Record<string, Observation>
}

/** A short outcome for an observation: what the table compares. */
export function outcomeOf(observation: Observation): string {
  const { status } = observation
  if (status >= 200 && status < 300) {
    return toolFailed(observation.rpc) ? 'allowed (tool error)' : 'allowed'
  }
  const challenge =
    observation.challenge === undefined
      ? ''
      : observation.challenge === ''
        ? ' (no error code)'
        : ` ${observation.challenge}`
  return `refused ${status}${challenge}${observation.code === undefined ? '' : ` ${observation.code}`}`
}

/** The outcome callproof is expected to give an attack. */
export function expectedRefusal(attack: AttackSpec): string {
  const { status, challenge, code } = attack.refusal
  return `refused ${status}${challenge === '' ? ' (no error code)' : ` ${challenge}`} ${code}`
}

/**
 * The downstream steps: alice, then bob (each signed in as themselves, fully authenticated)
 * email a file through the mail API the drive calls on its caller's behalf. The mail API records
 * whose authority each message went out with; every action names "downstream".
 */
export const DOWNSTREAM = {
  alice: {
    action: `emails ${PLAN.write.path} to carol through the mail API (downstream, as herself)`,
    args: { path: PLAN.write.path, to: 'carol@example.com' },
  },
  bob: {
    action: 'signs in as himself and emails README.md to carol (downstream mail API)',
    args: { path: 'README.md', to: 'carol@example.com' },
  },
} as const
