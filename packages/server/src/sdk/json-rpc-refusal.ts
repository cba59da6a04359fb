/**
 * A refusal a seam answers as a JSON-RPC error, the way its SDK answers the same fault, instead of
 * callproof's OAuth-style JSON body: what MCP 2026-07-28 clients (and the conformance suite)
 * expect of a protocol-level refusal — a header that disagrees with the body (-32020), an invalid
 * `_meta` envelope or continuation (-32602), a revision the server does not speak — with the
 * request's id. The pipeline audits it like any refusal (its `code`); only its answer differs.
 * Credential and policy refusals are never JSON-RPC refusals: they keep their challenges.
 *
 * @module
 */
import { CallproofError } from '@callproof/core'
import type { CallproofErrorCode } from '@callproof/core'

/** What the JSON-RPC answer of a {@link JsonRpcRefusal} says. */
export interface JsonRpcAnswer {
  /** The HTTP status (400 for every refusal the v2 seam makes). */
  readonly status: number
  /** The JSON-RPC error code. */
  readonly code: number
  /** `error.data` as the SDK would send it; callproof's code is added as `data.callproof`. */
  readonly data?: Record<string, unknown>
  /** The id of the request refused (`null` when it had none). */
  readonly id: string | number | null
}

/** A CallproofError answered as a JSON-RPC error. */
export class JsonRpcRefusal extends CallproofError {
  constructor(
    code: CallproofErrorCode,
    message: string,
    readonly answer: JsonRpcAnswer,
  ) {
    super(code, message)
  }

  /** The HTTP answer: `{ jsonrpc, id, error: { code, message, data } }`. */
  toResponse(): Response {
    const { status, code, data, id } = this.answer
    const body = {
      jsonrpc: '2.0',
      id,
      error: { code, message: this.message, data: { ...data, callproof: this.code } },
    }
    return new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    })
  }
}
