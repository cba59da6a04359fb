/** toHttpAnswer / toResponse / parseWwwAuthenticate: every row of DESIGN.md's error table. */
import { base64url } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  ApprovalRequiredError,
  CallproofError,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  UseNonceError,
  parseWwwAuthenticate,
  toHttpAnswer,
  toResponse,
} from '../src/index.js'
import type { CallproofErrorCode, ChallengeContext } from '../src/index.js'

const ctx: ChallengeContext = {
  resourceMetadata: 'https://drive.example.com/.well-known/oauth-protected-resource/mcp',
  algs: ['ES256', 'EdDSA', 'Ed25519'],
}
const detail = {
  type: 'mcp_tool_call' as const,
  resource: 'https://drive.example.com/mcp',
  tool: 'share_file',
  args: 'OdASMdn1tlF7m94kIP4eH6GbxtFCeSleai-qZH_7-Mg',
}

function challenge(error: unknown) {
  const answer = toHttpAnswer(error, ctx)
  const header = answer.headers['www-authenticate']
  const parsed = header === undefined ? [] : parseWwwAuthenticate(header)
  return { answer, header, parsed, params: parsed[0]?.params ?? {} }
}

describe('toHttpAnswer: DESIGN.md error table', () => {
  it('no credentials: 401, no error, resource_metadata and algs', () => {
    const { answer, header, parsed, params } = challenge(
      new CallproofError('ERR_NO_CREDENTIALS', 'none'),
    )
    expect(answer.status).toBe(401)
    expect(header).toBe(
      'DPoP resource_metadata="https://drive.example.com/.well-known/oauth-protected-resource/mcp", algs="ES256 EdDSA Ed25519"',
    )
    expect(parsed).toHaveLength(1)
    expect(parsed[0]!.scheme).toBe('DPoP')
    expect(params).toEqual({ resource_metadata: ctx.resourceMetadata, algs: 'ES256 EdDSA Ed25519' })
    expect(params.error).toBeUndefined()
  })

  it.each<[CallproofErrorCode, string]>([
    ['ERR_INVALID_TOKEN', 'invalid_token'],
    ['ERR_BEARER_NOT_ALLOWED', 'invalid_token'],
    ['ERR_INVALID_PROOF', 'invalid_dpop_proof'],
    ['ERR_BINDING_MISMATCH', 'invalid_dpop_proof'],
    ['ERR_REPLAY', 'invalid_dpop_proof'],
  ])('%s: 401 error="%s" with resource_metadata and algs', (code, error) => {
    const { answer, params } = challenge(new CallproofError(code, 'why'))
    expect(answer.status).toBe(401)
    expect(params).toMatchObject({
      error,
      error_description: 'why',
      resource_metadata: ctx.resourceMetadata,
      algs: 'ES256 EdDSA Ed25519',
    })
    expect(answer.body).toEqual({ error, error_description: 'why', code })
  })

  it('nonce: 401 use_dpop_nonce + DPoP-Nonce header', () => {
    const { answer, params } = challenge(new UseNonceError('n0nce-1'))
    expect(answer.status).toBe(401)
    expect(params.error).toBe('use_dpop_nonce')
    expect(answer.headers['dpop-nonce']).toBe('n0nce-1')
    expect(toHttpAnswer(new UseNonceError(''), ctx).headers['dpop-nonce']).toBeUndefined()
  })

  it('insufficient scope: 403 with every required scope', () => {
    const { answer, params } = challenge(new InsufficientScopeError(['drive:read', 'drive:write']))
    expect(answer.status).toBe(403)
    expect(params).toMatchObject({
      error: 'insufficient_scope',
      scope: 'drive:read drive:write',
      resource_metadata: ctx.resourceMetadata,
    })
  })

  it('insufficient user authentication: 401 with acr_values and integer max_age', () => {
    const { answer, params } = challenge(
      new InsufficientUserAuthenticationError({
        acrValues: ['urn:callproof:acr:mfa', 'urn:x'],
        maxAge: 300,
      }),
    )
    expect(answer.status).toBe(401)
    expect(params).toMatchObject({
      error: 'insufficient_user_authentication',
      acr_values: 'urn:callproof:acr:mfa urn:x',
      max_age: '300',
    })
    const onlyAge = challenge(new InsufficientUserAuthenticationError({ maxAge: 60 })).params
    expect(onlyAge.max_age).toBe('60')
    expect(onlyAge.acr_values).toBeUndefined()
  })

  it.each<['ERR_APPROVAL_REQUIRED' | 'ERR_APPROVAL_USED']>([
    ['ERR_APPROVAL_REQUIRED'],
    ['ERR_APPROVAL_USED'],
  ])('%s: 403 insufficient_authorization_details with the details to request', (code) => {
    const { answer, params } = challenge(new ApprovalRequiredError([detail], undefined, { code }))
    expect(answer.status).toBe(403)
    expect(params.error).toBe('insufficient_authorization_details')
    expect(
      JSON.parse(new TextDecoder().decode(base64url.decode(params.authorization_details!))),
    ).toEqual([detail])
    expect(answer.body).toMatchObject({ code, authorization_details: [detail] })
  })

  it.each<[CallproofErrorCode]>([['ERR_CALLER_NOT_ALLOWED'], ['ERR_TOOL_DENIED']])(
    '%s: 403 access_denied',
    (code) => {
      const { answer, params } = challenge(new CallproofError(code, 'no'))
      expect(answer.status).toBe(403)
      expect(params).toMatchObject({
        error: 'access_denied',
        resource_metadata: ctx.resourceMetadata,
      })
    },
  )

  it('answers ERR_CALLER_NOT_ALLOWED exactly as ERR_TOOL_DENIED (no tool-existence oracle)', () => {
    const message = 'the tool delete_file is not available'
    const excluded = toHttpAnswer(new CallproofError('ERR_CALLER_NOT_ALLOWED', message), ctx)
    const unknown = toHttpAnswer(new CallproofError('ERR_TOOL_DENIED', message), ctx)
    expect(excluded).toEqual(unknown)
    expect(excluded.body.code).toBe('ERR_TOOL_DENIED')
  })

  it.each<[CallproofErrorCode, number, string]>([
    ['ERR_SESSION_NOT_FOUND', 404, 'not_found'],
    ['ERR_SESSION_REQUIRED', 400, 'invalid_request'],
    ['ERR_BATCH_NOT_SUPPORTED', 400, 'invalid_request'],
    ['ERR_MALFORMED_BODY', 400, 'invalid_request'],
    ['ERR_BODY_TOO_LARGE', 413, 'payload_too_large'],
    ['ERR_NOT_ACCEPTABLE', 406, 'not_acceptable'],
    ['ERR_UNSUPPORTED_MEDIA_TYPE', 415, 'unsupported_media_type'],
    ['ERR_UNSUPPORTED_PROTOCOL_VERSION', 400, 'invalid_request'],
    ['ERR_HEADER_MISMATCH', 400, 'invalid_request'],
    ['ERR_INVALID_CONTINUATION', 400, 'invalid_request'],
    ['ERR_ORIGIN_NOT_ALLOWED', 403, 'forbidden'],
  ])('%s: %i %s without a challenge', (code, status, error) => {
    const { answer, header } = challenge(new CallproofError(code, 'x'))
    expect(answer.status).toBe(status)
    expect(answer.body.error).toBe(error)
    expect(header).toBeUndefined()
  })

  it.each<[CallproofErrorCode]>([['ERR_REPLAY_STORE_FULL'], ['ERR_STORE_UNAVAILABLE']])(
    '%s: 503 + Retry-After (fail closed)',
    (code) => {
      const answer = toHttpAnswer(new CallproofError(code, 'x'), { ...ctx, retryAfterSeconds: 2.5 })
      expect(answer.status).toBe(503)
      expect(answer.headers['retry-after']).toBe('3')
      expect(toHttpAnswer(new CallproofError(code, 'x'), ctx).headers['retry-after']).toBe('1')
    },
  )

  it('an unknown error is a 500 that reveals nothing', () => {
    const answer = toHttpAnswer(new Error('secret token abc'), ctx)
    expect(answer.status).toBe(500)
    expect(JSON.stringify(answer)).not.toContain('secret')
    expect(toHttpAnswer('boom', ctx).status).toBe(500)
  })
})

describe('escaping', () => {
  it('escapes quotes and backslashes and drops control and non-ASCII characters', () => {
    const nasty = 'a"b\\c\r\nWWW-Authenticate: Bearer x="ü'
    const answer = toHttpAnswer(new CallproofError('ERR_INVALID_PROOF', nasty), {
      resourceMetadata: 'https://x.example/m"d\\',
      algs: ['ES256'],
    })
    const header = answer.headers['www-authenticate']!
    expect(header).not.toMatch(/[\r\n]/)
    expect(header).toMatch(/^[\x20-\x7e]+$/)
    // error_description (RFC 6750 §3) allows neither " nor \: they are replaced.
    const [c] = parseWwwAuthenticate(header)
    expect(c!.params.error_description).toBe("a'b'c??WWW-Authenticate: Bearer x='?")
    // Other values keep their characters, escaped, and round-trip.
    expect(c!.params.resource_metadata).toBe('https://x.example/m"d\\')
    expect(header).toContain('resource_metadata="https://x.example/m\\"d\\\\"')
    // The header is valid for the Fetch API.
    expect(() => new Headers(answer.headers)).not.toThrow()
  })

  it('round-trips every parameter through the parser', () => {
    const error = new InsufficientScopeError(['a:b', 'c'], 'need "more", really\\')
    const header = toHttpAnswer(error, ctx).headers['www-authenticate']!
    expect(parseWwwAuthenticate(header)[0]!.params).toEqual({
      error: 'insufficient_scope',
      error_description: "need 'more', really'",
      scope: 'a:b c',
      resource_metadata: ctx.resourceMetadata,
      algs: 'ES256 EdDSA Ed25519',
    })
  })
})

describe('toResponse', () => {
  it('is a Response with the same status, headers and JSON body', async () => {
    const res = toResponse(new InsufficientScopeError(['drive:write']), ctx)
    expect(res.status).toBe(403)
    expect(res.headers.get('www-authenticate')).toContain('scope="drive:write"')
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.json()).toMatchObject({
      error: 'insufficient_scope',
      code: 'ERR_INSUFFICIENT_SCOPE',
    })
  })
})

describe('parseWwwAuthenticate', () => {
  it('parses several challenges, token and quoted values, token68, odd spacing and case', () => {
    const parsed = parseWwwAuthenticate(
      'Basic abc==, DPoP ERROR="use_dpop_nonce" , algs=ES256,Bearer realm="a, b", scope="x\\"y", error=invalid_token',
    )
    expect(parsed).toEqual([
      { scheme: 'Basic', params: { token68: 'abc==' } },
      { scheme: 'DPoP', params: { error: 'use_dpop_nonce', algs: 'ES256' } },
      { scheme: 'Bearer', params: { realm: 'a, b', scope: 'x"y', error: 'invalid_token' } },
    ])
  })

  it('never throws on garbage', () => {
    for (const h of [
      '',
      ',,,',
      '"',
      '=',
      'DPoP ="x"',
      'DPoP error="unterminated',
      'a=b=c',
      '\u0000',
    ]) {
      expect(() => parseWwwAuthenticate(h)).not.toThrow()
    }
    expect(parseWwwAuthenticate(undefined as unknown as string)).toEqual([])
  })
})
