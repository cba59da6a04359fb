import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type Provider from 'oidc-provider'
import type { OidcInteraction, UnknownObject } from 'oidc-provider'
import { validateMcpToolCall } from './authorization-details.js'
import type { McpToolCallDetail } from './authorization-details.js'
import { formTargetFor, sendPage } from './pages/layout.js'
import { approvalPage, consentPage, errorPage, loginPage, mfaPage } from './pages/pages.js'
import type { ClientView } from './pages/pages.js'
import type { DevLogger } from './types.js'
import { ACR_MFA, ACR_PASSWORD, checkMfaCode, checkPassword, requiredAcr } from './users.js'

interface PendingMfa {
  accountId: string
  expiresAt: number
}

const PENDING_MFA_MS = 5 * 60 * 1000
const MAX_FORM_BYTES = 16 * 1024

/**
 * The login, MFA, consent and approval pages, mounted at `/interaction/:uid`. oidc-provider owns
 * the protocol; these handlers only collect the user's answers and hand them back to it with
 * `interactionFinished`.
 *
 * @internal
 */
export function createInteractionHandler(options: {
  provider: Provider
  issuer: string
  resources: readonly string[]
  csrfKey: Buffer
  logger: DevLogger
}): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const { provider, resources, logger } = options
  const issuerOrigin = new URL(options.issuer).origin
  // Password checked, second factor pending, per interaction. In memory: the whole server is
  // a development process.
  const pendingMfa = new Map<string, PendingMfa>()

  function csrfFor(uid: string): string {
    return createHmac('sha256', options.csrfKey).update(`interaction:${uid}`).digest('base64url')
  }

  function csrfOk(uid: string, value: unknown): boolean {
    if (typeof value !== 'string') return false
    const expected = Buffer.from(csrfFor(uid))
    const given = Buffer.from(value)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  // Loopback origins are all "same-site" to each other, so SameSite cookies do not stop a page
  // served from another local port from posting an Approve. Refuse posts from any other origin.
  function sameOriginPost(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
    const origin = req.headers.origin
    if (origin !== undefined && origin !== issuerOrigin) return false
    return true
  }

  function takePending(uid: string): PendingMfa | undefined {
    const now = Date.now()
    for (const [key, value] of pendingMfa) if (value.expiresAt < now) pendingMfa.delete(key)
    return pendingMfa.get(uid)
  }

  async function clientView(details: OidcInteraction): Promise<ClientView> {
    const client = await provider.Client.find(details.params.client_id)
    return {
      id: details.params.client_id,
      name: client?.clientName,
      redirectUri:
        typeof details.params.redirect_uri === 'string' ? details.params.redirect_uri : undefined,
    }
  }

  function requestedResources(details: OidcInteraction): string[] {
    const r = details.params['resource']
    if (typeof r === 'string') return [r]
    if (Array.isArray(r)) return r.filter((x): x is string => typeof x === 'string')
    return []
  }

  function toolCalls(details: OidcInteraction): McpToolCallDetail[] | undefined {
    const rar = details.prompt.details['rar']
    if (!Array.isArray(rar) || rar.length === 0) return undefined
    // Validated again here (oidc-provider did at the authorization endpoint): the page must only
    // ever show what the token will carry.
    return rar.map((d) => validateMcpToolCall(d, resources))
  }

  async function showInteraction(
    res: ServerResponse,
    details: OidcInteraction,
    error?: string,
    status?: number,
  ): Promise<void> {
    const uid = details.uid
    const base = `/interaction/${uid}`
    const csrf = csrfFor(uid)
    const client = await clientView(details)
    const formTargets = [formTargetFor(client.redirectUri)].filter((x): x is string => !!x)
    const page = (title: string, body: ReturnType<typeof loginPage>): void =>
      sendPage(res, { title, body, formTargets, ...(status ? { status } : {}) })

    if (details.prompt.name === 'login') {
      const pending = takePending(uid)
      if (pending) {
        page(
          'One-time code',
          mfaPage({ action: `${base}/mfa`, csrf, user: pending.accountId, error }),
        )
        return
      }
      const reasons = details.prompt.reasons
      page(
        'Sign in',
        loginPage({
          action: `${base}/login`,
          csrf,
          client,
          resources: requestedResources(details),
          lockedUser: details.session?.accountId,
          stepUp: requiredAcr(acrValues(details)) === ACR_MFA,
          reLogin: ['login_prompt', 'max_age', 'oauth_max_age'].some((r) => reasons.includes(r)),
          error,
        }),
      )
      return
    }

    if (details.prompt.name === 'consent') {
      const user = details.session?.accountId ?? 'unknown'
      const calls = toolCalls(details)
      const resourceScopes = (details.prompt.details['missingResourceScopes'] ?? {}) as Record<
        string,
        string[]
      >
      if (calls) {
        const scopes = [...new Set(Object.values(resourceScopes).flat())]
        page(
          'Approve this call',
          approvalPage({ action: `${base}/confirm`, csrf, client, user, calls, scopes }),
        )
        return
      }
      const groups: Array<{ resource?: string; scopes: string[] }> = []
      const oidcScopes = details.prompt.details['missingOIDCScope']
      if (Array.isArray(oidcScopes) && oidcScopes.length) {
        groups.push({ scopes: oidcScopes.filter((s): s is string => typeof s === 'string') })
      }
      for (const [resource, scopes] of Object.entries(resourceScopes)) {
        groups.push({ resource, scopes })
      }
      if (groups.length === 0) {
        // Native clients are always asked (RFC 8252 §8.6): say what they already hold.
        for (const resource of requestedResources(details)) groups.push({ resource, scopes: [] })
      }
      page(
        'Allow access',
        consentPage({ action: `${base}/confirm`, csrf, client, user, scopes: groups }),
      )
      return
    }

    sendPage(res, {
      title: 'Error',
      status: 500,
      body: errorPage({
        error: 'server_error',
        description: `unknown prompt ${details.prompt.name}`,
      }),
    })
  }

  async function finish(req: IncomingMessage, res: ServerResponse, result: UnknownObject) {
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true })
  }

  async function deny(req: IncomingMessage, res: ServerResponse, description: string) {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: description },
      { mergeWithLastSubmission: false },
    )
  }

  async function onLogin(
    req: IncomingMessage,
    res: ServerResponse,
    details: OidcInteraction,
    form: URLSearchParams,
  ) {
    if (details.prompt.name !== 'login') throw new BadRequest('this interaction is not a sign-in')
    if (form.get('decision') === 'cancel') return deny(req, res, 'the user cancelled the sign-in')
    const username = (form.get('username') ?? '').trim()
    const password = form.get('password') ?? ''
    const locked = details.session?.accountId
    // A re-authentication or step-up is for the user already signed in; switching users here
    // would hand that user's session to another person's consent.
    if (locked && username !== locked) {
      return showInteraction(
        res,
        details,
        `You are signed in as ${locked}; sign in as ${locked}.`,
        400,
      )
    }
    const user = checkPassword(username, password)
    if (!user) {
      logger.info(`dev-auth-server: failed sign-in for ${JSON.stringify(username)}`)
      return showInteraction(res, details, 'Wrong user name or password.', 401)
    }
    if (requiredAcr(acrValues(details)) === ACR_MFA) {
      pendingMfa.set(details.uid, { accountId: user.id, expiresAt: Date.now() + PENDING_MFA_MS })
      return showInteraction(res, details)
    }
    await finish(req, res, {
      login: { accountId: user.id, acr: ACR_PASSWORD, amr: ['pwd'], remember: true },
    })
  }

  async function onMfa(
    req: IncomingMessage,
    res: ServerResponse,
    details: OidcInteraction,
    form: URLSearchParams,
  ) {
    if (details.prompt.name !== 'login') throw new BadRequest('this interaction is not a sign-in')
    if (form.get('decision') === 'cancel') {
      pendingMfa.delete(details.uid)
      return deny(req, res, 'the user cancelled the sign-in')
    }
    const pending = takePending(details.uid)
    if (!pending) return showInteraction(res, details, 'Sign in with your password first.', 400)
    if (!checkMfaCode(form.get('code') ?? '')) {
      return showInteraction(res, details, 'Wrong code. Try again.', 401)
    }
    pendingMfa.delete(details.uid)
    await finish(req, res, {
      login: { accountId: pending.accountId, acr: ACR_MFA, amr: ['pwd', 'otp'], remember: true },
    })
  }

  async function onConfirm(
    req: IncomingMessage,
    res: ServerResponse,
    details: OidcInteraction,
    form: URLSearchParams,
  ) {
    if (details.prompt.name !== 'consent') throw new BadRequest('this interaction is not a consent')
    const calls = toolCalls(details)
    const decision = form.get('decision')
    if (decision !== 'allow') {
      return deny(req, res, calls ? 'the user denied this call' : 'the user denied access')
    }
    const accountId = details.session?.accountId
    if (!accountId) throw new BadRequest('no signed-in user')
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id })
    if (!grant) throw new BadRequest('grant not found')
    const d = details.prompt.details
    if (Array.isArray(d['missingOIDCScope'])) grant.addOIDCScope(d['missingOIDCScope'].join(' '))
    const missing = (d['missingResourceScopes'] ?? {}) as Record<string, string[]>
    for (const [resource, scopes] of Object.entries(missing)) {
      grant.addResourceScope(resource, scopes.join(' '))
    }
    for (const call of calls ?? []) grant.addRar({ ...call })
    const grantId = await grant.save()
    await finish(req, res, { consent: { grantId } })
  }

  return async function handle(req, res) {
    const url = new URL(req.url ?? '/', issuerOrigin)
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|mfa|confirm))?$/.exec(url.pathname)
    if (!match) return false
    const [, uid, step] = match
    try {
      const details = await provider.interactionDetails(req, res)
      if (details.uid !== uid) throw new BadRequest('interaction does not match its cookie')
      if (!step) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new BadRequest('use GET')
        await showInteraction(res, details)
        return true
      }
      if (req.method !== 'POST') throw new BadRequest('use POST')
      if (!sameOriginPost(req)) throw new Forbidden('cross-origin form post refused')
      const form = await readForm(req)
      if (!csrfOk(details.uid, form.get('csrf'))) throw new Forbidden('missing or wrong form token')
      if (step === 'login') await onLogin(req, res, details, form)
      else if (step === 'mfa') await onMfa(req, res, details, form)
      else await onConfirm(req, res, details, form)
    } catch (error) {
      const known = error instanceof HttpError
      const oidcError = error as { error?: string; error_description?: string; status?: number }
      if (!known && !oidcError.error) logger.error('dev-auth-server: interaction failed', error)
      if (!res.headersSent) {
        sendPage(res, {
          title: 'Error',
          status: known ? error.status : (oidcError.status ?? 500),
          body: errorPage({
            error: known ? error.code : (oidcError.error ?? 'server_error'),
            description: known ? error.message : oidcError.error_description,
          }),
        })
      }
    }
    return true
  }
}

function acrValues(details: OidcInteraction): unknown {
  return details.params['acr_values'] ?? details.params['callproof_acr_values']
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

class BadRequest extends HttpError {
  constructor(message: string) {
    super(400, 'invalid_request', message)
  }
}

class Forbidden extends HttpError {
  constructor(message: string) {
    super(403, 'forbidden', message)
  }
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? ''
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    throw new BadRequest('expected an HTML form post (application/x-www-form-urlencoded)')
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buf = chunk as Buffer
    size += buf.length
    if (size > MAX_FORM_BYTES) throw new BadRequest('form too large')
    chunks.push(buf)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}
