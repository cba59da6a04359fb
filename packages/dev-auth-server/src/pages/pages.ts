import type { McpToolCallDetail } from '../authorization-details.js'
import { DEV_MFA_CODE, DEV_USERS } from '../users.js'
import { html } from './layout.js'
import type { Html } from './layout.js'
import { anyHidden, hiddenWarning, visible } from './visible.js'

/** Who is asking, as the pages show it. */
export interface ClientView {
  id: string
  name?: string | undefined
  redirectUri?: string | undefined
}

function clientLabel(client: ClientView): Html {
  return client.name
    ? html`<strong>${visible(client.name)}</strong> (client <code>${visible(client.id)}</code>)`
    : html`the client <code>${visible(client.id)}</code>`
}

function errorBox(error: string | undefined): Html {
  return error ? html`<p class="error" role="alert" data-error>${error}</p>` : html``
}

function hidden(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}" />`
}

/** The sign-in page: user name and password. */
export function loginPage(input: {
  action: string
  csrf: string
  client: ClientView
  resources: readonly string[]
  lockedUser?: string | undefined
  stepUp: boolean
  reLogin: boolean
  error?: string | undefined
}): Html {
  const heading = input.stepUp
    ? 'Confirm it is you, with a second factor'
    : input.reLogin
      ? 'Sign in again'
      : 'Sign in'
  const why = input.stepUp
    ? html`<p>
        ${clientLabel(input.client)} asks for a stronger sign-in: your password and then your
        one-time code.
      </p>`
    : input.reLogin
      ? html`<p>${clientLabel(input.client)} asks you to sign in again before it continues.</p>`
      : html`<p>
          ${clientLabel(input.client)} wants to act for you at ${resourceList(input.resources)}.
        </p>`
  const user = input.lockedUser
    ? html`<label for="username">User name</label>
        <input
          id="username"
          name="username"
          value="${input.lockedUser}"
          readonly
          autocomplete="username"
        />`
    : html`<label for="username">User name</label>
        <input
          id="username"
          name="username"
          required
          autofocus
          autocomplete="username"
          autocapitalize="none"
        />`
  return html`<h1>${heading}</h1>
    ${why} ${errorBox(input.error)}
    <form id="login" method="post" action="${input.action}">
      ${hidden(input.csrf)} ${user}
      <label for="password">Password</label>
      <input
        id="password"
        name="password"
        type="password"
        required
        autocomplete="current-password"
      />
      <div class="actions">
        <button class="primary" type="submit" name="decision" value="login">Sign in</button>
        <button type="submit" name="decision" value="cancel" formnovalidate>Cancel</button>
      </div>
    </form>
    <p class="hint">
      Development users:
      ${DEV_USERS.map((u, i) => html`${i ? ', ' : ''}<code>${u.id}</code> / <code>${u.password}</code>`)}.
    </p>`
}

/** The second-factor page. */
export function mfaPage(input: {
  action: string
  csrf: string
  user: string
  error?: string | undefined
}): Html {
  return html`<h1>Enter your one-time code</h1>
    <p>
      Signed in as <strong>${input.user}</strong> with a password. This step needs a second factor.
    </p>
    ${errorBox(input.error)}
    <form id="mfa" method="post" action="${input.action}">
      ${hidden(input.csrf)}
      <label for="code">One-time code</label>
      <input
        id="code"
        name="code"
        required
        autofocus
        inputmode="numeric"
        autocomplete="one-time-code"
      />
      <div class="actions">
        <button class="primary" type="submit" name="decision" value="verify">Verify</button>
        <button type="submit" name="decision" value="cancel" formnovalidate>Cancel</button>
      </div>
    </form>
    <p class="hint">Development code: <code>${DEV_MFA_CODE}</code>.</p>`
}

function resourceList(resources: readonly string[]): Html {
  if (resources.length === 0) return html`this server`
  return html`${resources.map((r, i) => html`${i ? ' and ' : ''}<code>${r}</code>`)}`
}

const SCOPE_WORDS: Record<string, string> = {
  openid: 'know who you are',
  offline_access: 'keep access while you are away (refresh tokens)',
}

const VERB_WORDS: Record<string, string> = {
  read: 'see and read',
  write: 'create, change and delete',
  share: 'share with other people',
  admin: 'administer',
}

/** A scope in plain words: `drive:read` → "see and read your drive". */
export function describeScope(scope: string): string {
  const known = SCOPE_WORDS[scope]
  if (known) return known
  const [area, verb] = scope.split(':')
  const words = verb ? VERB_WORDS[verb] : undefined
  if (area && words) return `${words} your ${area}`
  return `use the permission “${scope}”`
}

/** The consent page: which scopes at which resource. */
export function consentPage(input: {
  action: string
  csrf: string
  client: ClientView
  user: string
  scopes: ReadonlyArray<{ resource?: string; scopes: readonly string[] }>
}): Html {
  const showsHidden =
    anyHidden([input.client.name, input.client.id, input.client.redirectUri]) ||
    anyHidden(input.scopes.map((g) => [g.resource, g.scopes]))
  return html`<h1>Allow access?</h1>
    <p>Signed in as <strong>${input.user}</strong>. ${clientLabel(input.client)} asks to:</p>
    ${showsHidden ? hiddenWarning('the client’s name, the resources or the permissions asked for') : ''}
    ${input.scopes.map(
      (group) =>
        html`<section>
          ${
            group.resource
              ? html`<h2>At <code>${visible(group.resource)}</code></h2>`
              : html`<h2>About your account</h2>`
          }
          <ul>
            ${group.scopes.map(
              (s) => html`<li>${visible(describeScope(s))} (<code>${visible(s)}</code>)</li>`,
            )}
          </ul>
        </section>`,
    )}
    ${
      input.client.redirectUri
        ? html`<p class="hint">
            Afterwards you return to <code>${visible(input.client.redirectUri)}</code>.
          </p>`
        : html``
    }
    <form id="consent" method="post" action="${input.action}">
      ${hidden(input.csrf)}
      <div class="actions">
        <button class="primary" type="submit" name="decision" value="allow">Allow</button>
        <button type="submit" name="decision" value="deny">Deny</button>
      </div>
    </form>`
}

// Plain values read as they are (path=notes.txt); anything that could blur the boundary between
// two arguments (a comma, an equals sign, spaces, quotes) is shown quoted, so that a value like
// "a.txt, with=eve" cannot pass for an extra argument. Hidden characters are marked either way.
function argumentValue(value: unknown): Html {
  if (typeof value === 'string' && /^[\w./@:+~-]+$/.test(value)) return visible(value)
  return visible(JSON.stringify(value))
}

function argumentsText(args: Readonly<Record<string, unknown>>): Html {
  return html`${Object.entries(args).map(
    ([k, v], i) =>
      html`${i ? ', ' : ''}${visible(/^[\w.-]+$/.test(k) ? k : JSON.stringify(k))}=${argumentValue(v)}`,
  )}`
}

/** The per-call approval page: one tool, its arguments, Approve / Deny. */
export function approvalPage(input: {
  action: string
  csrf: string
  client: ClientView
  user: string
  calls: readonly McpToolCallDetail[]
  scopes: readonly string[]
}): Html {
  const who = visible(input.client.name ?? input.client.id)
  const question = input.calls.map(
    (call, i) =>
      html`${i ? ' and to ' : ''}${
        call.arguments && Object.keys(call.arguments).length
          ? html`call ${visible(call.tool)} with ${argumentsText(call.arguments)}`
          : call.arguments
            ? html`call ${visible(call.tool)} with no arguments`
            : html`call ${visible(call.tool)} (arguments not shown by the agent)`
      }`,
  )
  const showsHidden =
    anyHidden([input.client.name, input.client.id]) ||
    anyHidden(input.calls.map((c) => [c.tool, c.resource, c.arguments ?? null]))
  return html`<h1>Allow agent ${who} to ${question}?</h1>
    ${showsHidden ? hiddenWarning('this call’s tool, agent or arguments') : ''}
    <p>
      Signed in as <strong>${input.user}</strong>. The agent is ${clientLabel(input.client)}. This
      approval is for
      ${input.calls.length === 1 ? 'this one call only' : 'these calls only, once each'}: it expires
      within a minute and cannot be reused.
    </p>
    ${input.calls.map(
      (call) =>
        html`<section class="call">
          <h2>Tool <code>${visible(call.tool)}</code></h2>
          <p>At <code>${visible(call.resource)}</code></p>
          ${
            call.arguments
              ? html`<dl class="args">
                  ${Object.entries(call.arguments).map(
                    ([k, v]) =>
                      html`<dt>${visible(k)}</dt>
                        <dd>${visible(typeof v === 'string' ? v : JSON.stringify(v))}</dd>`,
                  )}
                </dl>`
              : html`<p>
                  The agent did not show the arguments. Their fingerprint is
                  <code>${call.args}</code>.
                </p>`
          }
        </section>`,
    )}
    ${
      input.scopes.length
        ? html`<p class="hint">
            It also uses:
            ${input.scopes.map((s, i) => html`${i ? ', ' : ''}${describeScope(s)} (<code>${s}</code>)`)}.
          </p>`
        : html``
    }
    <form id="approval" method="post" action="${input.action}">
      ${hidden(input.csrf)}
      <div class="actions">
        <button class="primary" type="submit" name="decision" value="allow">Approve</button>
        <button type="submit" name="decision" value="deny">Deny</button>
      </div>
    </form>`
}

/** A plain error page for requests that cannot be sent back to a client. */
export function errorPage(input: { error: string; description?: string | undefined }): Html {
  return html`<h1>The request cannot continue</h1>
    <p class="error" role="alert" data-error>
      <code>${input.error}</code>${input.description ? html`: ${input.description}` : html``}
    </p>
    <p>
      Nothing was sent back to the application. Close this page and start again from the agent.
    </p>`
}

/** The sign-out question; `form` is oidc-provider's own (hidden) form with its xsrf token. */
export function logoutPage(input: { form: string }): Html {
  return html`<h1>Sign out?</h1>
    <p>Sign out of the callproof development authorization server.</p>
    ${{ html: input.form }}
    <div class="actions">
      <button class="primary" type="submit" form="op.logoutForm" name="logout" value="yes">
        Yes, sign me out
      </button>
      <button type="submit" form="op.logoutForm">No, stay signed in</button>
    </div>`
}

/** After signing out. */
export function loggedOutPage(): Html {
  return html`<h1>Signed out</h1>
    <p>You are signed out. You can close this page.</p>`
}
