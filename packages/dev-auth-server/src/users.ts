import { timingSafeEqual, createHash } from 'node:crypto'

/** The password authentication level: a password alone. */
export const ACR_PASSWORD = 'urn:callproof:acr:pwd'
/** The multi-factor level: a password and the development one-time code. */
export const ACR_MFA = 'urn:callproof:acr:mfa'

/** The authentication levels this server knows, weakest first. */
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA] as const

/** One of {@link ACR_VALUES}. */
export type AcrValue = (typeof ACR_VALUES)[number]

/**
 * The development second factor. A fixed code stands in for a TOTP app so that demos and tests
 * can type it; it is published on purpose and protects nothing.
 */
export const DEV_MFA_CODE = '123456'

/** A development test user. */
export interface DevUser {
  /** The subject (`sub`) of the user's tokens. */
  readonly id: string
  /** The name shown on the pages. */
  readonly name: string
  /** The published development password. */
  readonly password: string
}

/**
 * The development test users and their published passwords. Anyone who reads this file can sign
 * in as them: that is the point of a development server, and why it only listens on loopback.
 */
export const DEV_USERS: readonly DevUser[] = Object.freeze([
  Object.freeze({ id: 'alice', name: 'Alice', password: 'alice-dev-password' }),
  Object.freeze({ id: 'bob', name: 'Bob', password: 'bob-dev-password' }),
])

/** Looks a user up by id. */
export function findUser(id: string): DevUser | undefined {
  return DEV_USERS.find((user) => user.id === id)
}

// Comparing digests keeps the comparison constant-time whatever the input length; a dev server
// should still model the habit.
function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest()
  const db = createHash('sha256').update(b).digest()
  return timingSafeEqual(da, db)
}

/** Checks a user's password; returns the user when it is right. */
export function checkPassword(id: string, password: string): DevUser | undefined {
  const user = findUser(id)
  // Compare even for unknown users so that the answer time does not tell which users exist.
  const ok = sameSecret(password, user?.password ?? '\u0000no-such-user')
  return ok && user ? user : undefined
}

/** Checks the development second-factor code. */
export function checkMfaCode(code: string): boolean {
  return sameSecret(code.trim(), DEV_MFA_CODE)
}

/** Whether `acr` satisfies a request for `wanted` (MFA satisfies a request for a password). */
export function acrSatisfies(acr: string | undefined, wanted: string): boolean {
  if (acr === undefined) return false
  const have = ACR_VALUES.indexOf(acr as AcrValue)
  const need = ACR_VALUES.indexOf(wanted as AcrValue)
  if (need === -1) return true // unknown values are voluntary (OpenID Connect Core §3.1.2.1)
  return have >= need
}

/**
 * The level a request demands: the weakest known value of `acr_values` (any listed level is
 * acceptable to the client), or undefined when it names no level this server knows.
 */
export function requiredAcr(acrValues: unknown): AcrValue | undefined {
  if (typeof acrValues !== 'string') return undefined
  const known = acrValues
    .split(' ')
    .filter((v): v is AcrValue => (ACR_VALUES as readonly string[]).includes(v))
  if (known.length === 0) return undefined
  return known.sort((a, b) => ACR_VALUES.indexOf(a) - ACR_VALUES.indexOf(b))[0]
}
