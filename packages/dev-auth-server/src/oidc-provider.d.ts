// oidc-provider 9 ships no type declarations. These cover only what this package touches; they
// are internal (no exported type of this package refers to them).
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  export type UnknownObject = Record<string, unknown>

  export interface OidcSession {
    accountId?: string
    acr?: string
    amr?: string[]
    loginTs?: number
    authTime(): number | undefined
    past(age: number): boolean
  }

  export interface OidcClient {
    clientId: string
    clientName?: string
    clientUri?: string
    applicationType?: string
    clientAuthMethod?: string
    redirectUris: string[]
    grantTypeAllowed(type: string): boolean
    metadata(): UnknownObject
  }

  export interface OidcToken {
    kind: string
    jti: string
    accountId?: string
    clientId?: string
    grantId?: string
    /** Seconds since the epoch (set once the token is saved or issued). */
    exp?: number
    acr?: string
    amr?: string[]
    authTime?: number
    rar?: UnknownObject[]
    resource?: string | string[]
    scope?: string
    gty?: string
    resourceServer?: { identifier(): string; audience?: string }
    scopes: Set<string>
  }

  export interface OidcContext {
    route: string
    params: UnknownObject & {
      acr_values?: string
      authorization_details?: string
      resource?: string | string[]
      max_age?: number | string
    }
    session: OidcSession
    acr?: string
    result?: { login?: { acr?: string; accountId?: string }; consent?: unknown }
    client: OidcClient
    entities: {
      AuthorizationCode?: OidcToken
      RefreshToken?: OidcToken
      Grant?: OidcGrant
      [name: string]: unknown
    }
    grant?: OidcGrant
    prompts: Set<string>
    /** The absolute URL of one of the provider's routes (`token`, …). */
    urlFor(route: string): string
  }

  export interface KoaContextWithOIDC {
    oidc: OidcContext
    type: string
    body: unknown
    status: number
    set(name: string, value: string): void
  }

  export interface OidcGrant {
    jti: string
    accountId?: string
    clientId?: string
    readonly isExpired: boolean
    rar?: UnknownObject[]
    addOIDCScope(scope: string): void
    addResourceScope(resource: string, scope: string): void
    addRar(detail: UnknownObject): void
    save(): Promise<string>
  }

  export interface OidcInteraction {
    uid: string
    jti: string
    returnTo: string
    params: UnknownObject & { client_id: string; redirect_uri?: string }
    prompt: { name: string; reasons: string[]; details: UnknownObject }
    session?: { accountId?: string; acr?: string; amr?: string[]; uid?: string }
    grantId?: string
    lastSubmission?: UnknownObject
    result?: UnknownObject
    exp: number
  }

  export class Check {
    constructor(
      reason: string,
      description: string,
      check: (ctx: KoaContextWithOIDC) => boolean | Promise<boolean>,
      details?: (ctx: KoaContextWithOIDC) => UnknownObject | Promise<UnknownObject>,
    )
    static REQUEST_PROMPT: true
    static NO_NEED_TO_PROMPT: false
  }

  export interface Prompt {
    name: string
    checks: Check[] & { add(check: Check, index?: number): void }
  }

  export interface Policy extends Array<Prompt> {
    get(name: string): Prompt | undefined
  }

  export const interactionPolicy: {
    Check: typeof Check
    base(): Policy
  }

  export class OIDCProviderError extends Error {
    error: string
    error_description?: string
    status: number
  }

  type ErrorConstructor = new (description?: string, detail?: string) => OIDCProviderError

  export const errors: {
    OIDCProviderError: typeof OIDCProviderError
    AccessDenied: ErrorConstructor
    InvalidTarget: ErrorConstructor
    InvalidRequest: ErrorConstructor
    InvalidClientMetadata: ErrorConstructor
    InvalidAuthorizationDetails: ErrorConstructor
    InvalidGrant: ErrorConstructor
    InvalidRedirectUri: ErrorConstructor
    InvalidScope: ErrorConstructor
    UnauthorizedClient: ErrorConstructor
  }

  export interface OidcAccessToken extends Omit<OidcToken, 'resourceServer'> {
    resourceServer: unknown
    readonly expiration: number
    readonly tokenType: string
    save(): Promise<string>
  }

  export class Provider {
    constructor(issuer: string, configuration: UnknownObject)
    readonly issuer: string
    proxy: boolean
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<OidcInteraction>
    interactionResult(
      req: IncomingMessage,
      res: ServerResponse,
      result: UnknownObject,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<string>
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: UnknownObject,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>
    on(event: string, listener: (...args: unknown[]) => void): this
    use(middleware: (ctx: never, next: () => Promise<void>) => Promise<void>): this
    Client: { find(id: string): Promise<OidcClient | undefined> }
    Grant: {
      new (payload: { accountId: string; clientId: string }): OidcGrant
      find(id: string): Promise<OidcGrant | undefined>
    }
    RefreshToken: { find(value: string): Promise<(OidcToken & { consumed?: number }) | undefined> }
    AccessToken: new (payload: {
      accountId: string
      client: OidcClient
      gty: string
      scope: string
      expiresIn: number
    }) => OidcAccessToken
    registerGrantType(
      name: string,
      handler: (ctx: KoaContextWithOIDC) => Promise<void>,
      params: string[],
      dupes: string[],
    ): void
  }

  export default Provider
}

// Internal helpers of oidc-provider 9 (the package has no exports map), used by the token
// exchange grant so that its DPoP proofs are checked exactly like every other grant's.
declare module 'oidc-provider/lib/helpers/validate_dpop.js' {
  import type { KoaContextWithOIDC, Provider } from 'oidc-provider'
  export interface DpopResult {
    thumbprint: string
    jti: string
    iat: number
  }
  export default function validateDpop(
    provider: Provider,
    ctx: KoaContextWithOIDC,
  ): Promise<DpopResult | undefined>
}

declare module 'oidc-provider/lib/helpers/grant_common.js' {
  import type { KoaContextWithOIDC, OidcAccessToken, Provider } from 'oidc-provider'
  import type { DpopResult } from 'oidc-provider/lib/helpers/validate_dpop.js'
  export function applyDpopBinding(
    provider: Provider,
    ctx: KoaContextWithOIDC,
    dPoP: DpopResult,
    token: OidcAccessToken,
  ): Promise<void>
}
