/**
 * The demo's story as data: alice's steps, the second agent's attacks, and what each is expected
 * to end in against callproof and against the insecure baseline. `demo.ts` plays it; the attacks
 * themselves run in a separate process (`attacker.ts`).
 */
import type { Observation, WireExchange, WireRequest } from './wire.js'
import { toolFailed } from './wire.js'

/** Which server the story is played against. */
export type DemoMode = 'callproof' | 'baseline'

/** The second agent's attempts to ride on alice's authorization. */
export type AttackId =
  'no-credentials' | 'bearer-token' | 'token-own-proof' | 'replay' | 'altered-args'

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
  /** Every request each attack sent, with its answer. */
  readonly exchanges: Record<string, readonly WireExchange[]>
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

/**
 * bob, signed in as himself with his own key and a valid token, sends a call on alice's open MCP
 * session: the session id is the only thing of hers he uses. callproof answers as it would for an
 * unknown session (404), so that the answer reveals nothing.
 */
export const SESSION_RIDE = {
  action:
    'sends read_file reports/q3.csv on alice’s session (Mcp-Session-Id), with his own valid token and key',
  tool: 'read_file',
  args: { path: 'reports/q3.csv' },
  refusal: { status: 404, code: 'ERR_SESSION_NOT_FOUND' },
} as const

/** The outcome callproof is expected to give bob's call on alice's session. */
export const SESSION_RIDE_REFUSAL = `refused ${SESSION_RIDE.refusal.status} ${SESSION_RIDE.refusal.code}`

/** Every step of the story, by a stable key (the rows' `key`, the lesson's explanations). */
export type StepKey =
  | 'sign-in'
  | 'read'
  | 'write'
  | 'delete'
  | 'share'
  | 'mail-alice'
  | 'mail-bob'
  | 'session-ride'
  | AttackId
  | 'check'

/** What a step teaches: shown by `demo --step` before the step runs, and on the `--web` page. */
export interface StepLesson {
  /** What the caller (or the attacker) does, and with what. */
  readonly does: string
  /** Why it works (or what happens) on the insecure baseline. */
  readonly baseline: string
  /** What callproof checks, and what it answers. */
  readonly callproof: string
}

/** The explanation of every step. */
export const LESSON: Readonly<Record<StepKey, StepLesson>> = {
  'sign-in': {
    does: 'alice’s agent connects without a token; the server’s 401 names its metadata, the agent signs alice in and gets a token bound to its own key (cnf.jkt).',
    baseline:
      'the baseline also asks for a sign-in, once: after that it caches the authorization for the whole process, not for alice.',
    callproof:
      'every request carries the token and a fresh DPoP proof signed by the key the token is bound to; nothing is remembered between requests.',
  },
  read: {
    does: 'alice reads a file: one tools/call with her token and a new proof naming this call (method, tool, argument fingerprint).',
    baseline: 'served from the cached authorization; the request itself proves nothing.',
    callproof:
      'checks the token (issuer, audience, expiry), the proof (signature, method, URL, age, token hash, first use) and the policy of read_file (scope drive:read).',
  },
  write: {
    does: 'alice writes notes/plan.md.',
    baseline: 'served: no per-tool check.',
    callproof:
      'the policy of write_file asks for scope drive:write, which her token carries; the proof binds the arguments she sent.',
  },
  delete: {
    does: 'alice deletes a file: a tool that needs a multi-factor sign-in at most 5 minutes old.',
    baseline: 'deleted without asking anything: the baseline has no tool policy.',
    callproof:
      'answers 401 insufficient_user_authentication (acr_values, max_age, RFC 9470); the agent sends alice back to sign in with MFA and retries with the new token.',
  },
  share: {
    does: 'alice shares a file with bob: a tool that needs her approval of this very call.',
    baseline: 'shared without asking: no tool policy.',
    callproof:
      'answers 403 insufficient_authorization_details; alice approves exactly this call (RFC 9396 authorization_details) and the retry carries a one-time approval.',
  },
  'mail-alice': {
    does: 'alice asks the drive to email a file: the drive calls the mail API downstream, on her behalf.',
    baseline: 'the drive uses the one mail token it holds: alice’s, because she was first.',
    callproof:
      'the drive gets a mail token for this caller (alice) and the mail API records whose authority each message went out with.',
  },
  'mail-bob': {
    does: 'bob signs in as himself and asks the drive to email a file.',
    baseline:
      'bob’s mail goes out with alice’s mail token: the baseline keeps one downstream token for every caller (a confused deputy).',
    callproof: 'the downstream token is bob’s own: his mail goes out as bob.',
  },
  'session-ride': {
    does: 'bob, with his own valid token and his own key, sends a call on alice’s open MCP session: only her session id is hers.',
    baseline: 'the baseline treats the session id as a login and serves him on alice’s session.',
    callproof:
      'a session belongs to the caller that opened it (subject, client, key): for anyone else it does not exist, 404, exactly like an unknown session id.',
  },
  'no-credentials': {
    does: 'a second agent (another process, its own key, no authorization) opens its own session with a proof but no token.',
    baseline: 'the authorization cached for alice serves whoever connects next.',
    callproof: 'no token, no call: 401 with a challenge that names the metadata, and nothing ran.',
  },
  'bearer-token': {
    does: 'the second agent presents a copy of alice’s access token as a plain Bearer token.',
    baseline: 'anything that looks like a token is enough (and the cache would serve it anyway).',
    callproof:
      'the Bearer scheme is refused: a token must come with a proof of its key (401 invalid_token).',
  },
  'token-own-proof': {
    does: 'the second agent presents alice’s token with a valid proof signed by its own key.',
    baseline: 'no DPoP check: the token alone is enough.',
    callproof:
      'the token is bound to alice’s key (cnf.jkt); the proof’s key is another: 401 invalid_dpop_proof.',
  },
  replay: {
    does: 'the second agent sends alice’s captured write_file request again, byte for byte: her token, her proof, her body.',
    baseline: 'nothing remembers a request: the copy runs again.',
    callproof:
      'each proof is accepted once (its jti is remembered until it expires): 401 invalid_dpop_proof, ERR_REPLAY.',
  },
  'altered-args': {
    does: 'the second agent takes alice’s captured MFA-strength delete_file request and changes only the path argument.',
    baseline: 'no binding: the altered call runs with alice’s authority.',
    callproof:
      'the proof carries the fingerprint of the arguments (the mcp claim); the body no longer matches it: 401 invalid_dpop_proof, ERR_BINDING_MISMATCH.',
  },
  check: {
    does: 'alice reads her drive back after the attacks.',
    baseline: 'the attacks ran as alice: files overwritten, shared and deleted.',
    callproof: 'nothing the second agent or bob sent ran: the drive is intact.',
  },
}
