/**
 * Which grant an agent without a user at the keyboard uses, chosen from the session's options:
 * client credentials, enterprise-managed authorization (ID-JAG) or workload identity federation.
 * One place, so the session asks "is there an agent grant, and what client does it use" once.
 *
 * @module
 */

import type * as oauth from 'oauth4webapi'
import { CallproofClientError } from '../errors.js'
import { clientCredentialsFlow, type OAuthContext } from '../oauth.js'
import type { TokenSet } from '../stores.js'
import { enterpriseAuthorizationFlow, type EnterpriseAuthorizationOptions } from './enterprise.js'
import { agentClient, type AgentClientOptions } from './jwt-bearer.js'
import { workloadIdentityFlow, type WorkloadIdentityOptions } from './workload.js'

/** The agent grants a session may be given, at most one of them. */
export interface AgentGrantOptions {
  clientCredentials?: AgentClientOptions
  enterpriseAuthorization?: EnterpriseAuthorizationOptions
  workloadIdentity?: WorkloadIdentityOptions
}

/** The agent grant chosen. */
export type AgentGrant =
  | { kind: 'clientCredentials'; options: AgentClientOptions }
  | { kind: 'enterpriseAuthorization'; options: EnterpriseAuthorizationOptions }
  | { kind: 'workloadIdentity'; options: WorkloadIdentityOptions }

const KINDS = ['clientCredentials', 'enterpriseAuthorization', 'workloadIdentity'] as const

/**
 * The one agent grant in `options`, or undefined when a user authorizes.
 *
 * @throws {@link CallproofClientError} `ERR_INVALID_OPTIONS` when more than one is given or one
 * lacks what it needs
 */
export function agentGrantOf(options: AgentGrantOptions): AgentGrant | undefined {
  const given = KINDS.filter((kind) => options[kind] !== undefined)
  if (given.length > 1) {
    throw new CallproofClientError(
      'ERR_INVALID_OPTIONS',
      `give one agent grant, not ${given.join(' and ')}`,
    )
  }
  const kind = given[0]
  if (kind === undefined) return undefined
  const grant = { kind, options: options[kind] } as AgentGrant
  if (typeof grant.options.clientId !== 'string' || grant.options.clientId === '') {
    throw new CallproofClientError('ERR_INVALID_OPTIONS', `${kind} needs a clientId`)
  }
  if (grant.kind === 'enterpriseAuthorization') {
    const { idp, idToken } = grant.options
    if (typeof idp?.issuer !== 'string' || typeof idp.clientId !== 'string') {
      throw new CallproofClientError(
        'ERR_INVALID_OPTIONS',
        'enterpriseAuthorization needs idp.issuer and idp.clientId',
      )
    }
    if (idToken === undefined) {
      throw new CallproofClientError('ERR_INVALID_OPTIONS', 'enterpriseAuthorization needs idToken')
    }
  }
  if (grant.kind === 'workloadIdentity' && grant.options.assertion === undefined) {
    throw new CallproofClientError('ERR_INVALID_OPTIONS', 'workloadIdentity needs an assertion')
  }
  return grant
}

/**
 * The oauth4webapi client and its authentication at the MCP authorization server for `grant`.
 */
export function agentGrantClient(
  grant: AgentGrant,
): Promise<{ client: oauth.Client; clientAuth: oauth.ClientAuth }> {
  return agentClient(grant.options)
}

/**
 * Runs `grant` for `request`.
 *
 * @throws {@link CallproofClientError} whatever the grant's flow throws
 */
export function runAgentGrant(
  ctx: OAuthContext,
  grant: AgentGrant,
  request: { resource: string; scopes?: readonly string[] },
): Promise<TokenSet> {
  switch (grant.kind) {
    case 'clientCredentials':
      return clientCredentialsFlow(ctx, request)
    case 'enterpriseAuthorization':
      return enterpriseAuthorizationFlow(ctx, grant.options, request)
    case 'workloadIdentity':
      return workloadIdentityFlow(ctx, grant.options, request)
  }
}
