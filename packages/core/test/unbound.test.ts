/**
 * `allowUnbound` (issue 12, item 2): the verifier lets a standard RFC 9449 proof without the
 * `mcp` claim through only when asked, and says so in the call (`unbound`), so that the server
 * can decide by the policy of what the message calls. Everything else is still checked.
 */
import { describe, expect, it } from 'vitest'
import { CallproofError, assertValidPolicy, bindingFor } from '../src/index.js'
import { clientKeys, issuer, proofFor, thumbprintOf, toolCall, verifierWith } from './helpers.js'

const as = await issuer()
const alice = await clientKeys()
const aliceJkt = await thumbprintOf(alice)
const mallory = await clientKeys()

function request(token: string, proof: string, message: unknown, allowUnbound: boolean) {
  const headers = new Headers({ authorization: `DPoP ${token}`, dpop: proof })
  return { method: 'POST', url: 'http://127.0.0.1:9/mcp', headers, message, allowUnbound }
}

async function refusal(promise: Promise<unknown>): Promise<CallproofError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CallproofError)
  return err as CallproofError
}

describe('allowUnbound', () => {
  it('reports a proof without mcp as unbound, with the binding of the message it did not check', async () => {
    const { verifier } = verifierWith(as.keys)
    const token = await as.token(aliceJkt)
    const message = toolCall('read_file', { path: 'a.txt' })
    const bare = await proofFor(alice, token, undefined)
    const call = await verifier.verify(request(token, bare, message, true))
    expect(call.unbound).toBe(true)
    expect(call.binding).toEqual(await bindingFor(message))
    // A bound proof is not reported as unbound.
    const bound = await verifier.verify(
      request(token, await proofFor(alice, token, message), message, true),
    )
    expect(bound.unbound).toBeUndefined()
  })

  it('without it, the missing claim is still a mismatch', async () => {
    const { verifier } = verifierWith(as.keys)
    const token = await as.token(aliceJkt)
    const bare = await proofFor(alice, token, undefined)
    const err = await refusal(verifier.verify(request(token, bare, toolCall(), false)))
    expect(err.code).toBe('ERR_BINDING_MISMATCH')
  })

  it('a wrong mcp claim, another key, or a replay is refused as before', async () => {
    const { verifier } = verifierWith(as.keys)
    const token = await as.token(aliceJkt)
    const message = toolCall('read_file', { path: 'a.txt' })
    const wrong = await proofFor(alice, token, toolCall('delete_file', { path: 'a.txt' }))
    expect((await refusal(verifier.verify(request(token, wrong, message, true)))).code).toBe(
      'ERR_BINDING_MISMATCH',
    )
    const otherKey = await proofFor(mallory, token, undefined)
    expect((await refusal(verifier.verify(request(token, otherKey, message, true)))).code).toBe(
      'ERR_INVALID_PROOF',
    )
    const bare = await proofFor(alice, token, undefined)
    await verifier.verify(request(token, bare, message, true))
    expect((await refusal(verifier.verify(request(token, bare, message, true)))).code).toBe(
      'ERR_REPLAY',
    )
  })
})

describe("a policy's binding", () => {
  it("accepts 'required' and 'optional', refuses anything else, and loosens without declaring", () => {
    expect(() => assertValidPolicy('t', { scopes: ['a'], binding: 'optional' })).not.toThrow()
    expect(() => assertValidPolicy('t', { public: true, binding: 'required' })).not.toThrow()
    expect(() => assertValidPolicy('t', { scopes: ['a'], binding: 'none' })).toThrow(
      /binding must be 'required' or 'optional'/,
    )
    // `binding` alone requires nothing: the policy must still say `public: true` to be open.
    expect(() => assertValidPolicy('t', { binding: 'optional' })).toThrow(/requires nothing/)
  })
})
