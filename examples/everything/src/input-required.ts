/**
 * The Multi Round-Trip tools and prompt of the MCP conformance suite's `input-required-result-*`
 * scenarios (MCP 2026-07-28, SEP-2322), registered on the SDK v2 line only (`--sdk v2`): a tool
 * answers `InputRequiredResult` first and completes when the client sends the same request again
 * with `inputResponses` (and the `requestState` it got). callproof seals every `requestState` to
 * the caller and the call, so a tampered or foreign one never reaches these handlers.
 *
 * The registry's callbacks have SDK v1's types; the v2 results are cast.
 *
 * @module
 */
import { inputRequired } from '@modelcontextprotocol/server'
import type { InputRequest, ServerContext } from '@modelcontextprotocol/server'
import type { ToolPolicy } from '@callproof/core'
import type { ToolRegistry } from '@callproof/server'

const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] })

const elicit = (message: string, field: string): InputRequest =>
  inputRequired.elicit({
    message,
    requestedSchema: {
      type: 'object',
      properties: { [field]: { type: 'string' } },
      required: [field],
    },
  })

/** The SDK v2 request context (the second argument of a callback on `@callproof/server/v2`). */
const mcpReqOf = (extra: unknown) => (extra as ServerContext).mcpReq

/** The accepted content of a form elicitation's response, if it was accepted. */
function accepted(responses: Record<string, unknown> | undefined, key: string) {
  const response = responses?.[key] as
    { action?: unknown; content?: Record<string, unknown> } | undefined
  return response?.action === 'accept' ? response.content : undefined
}

/** Registers the conformance suite's Multi Round-Trip tools and prompt under `tools`/`prompts`. */
export function registerInputRequired(
  registry: ToolRegistry,
  policies: { tools: ToolPolicy; prompts: ToolPolicy },
): void {
  const policy = policies.tools
  registry.register(
    'test_input_required_result_elicitation',
    { description: 'Asks the user for a name (MRTR)', policy },
    (extra) => {
      const name = accepted(mcpReqOf(extra).inputResponses, 'user_name')?.['name']
      if (typeof name !== 'string') {
        return inputRequired({
          inputRequests: { user_name: elicit('What is your name?', 'name') },
        }) as never
      }
      return text(`Hello, ${name}!`)
    },
  )
  registry.register(
    'test_input_required_result_sampling',
    { description: 'Asks the client to sample an LLM (MRTR)', policy },
    (extra) => {
      const answer = mcpReqOf(extra).inputResponses?.['capital_question'] as
        { content?: { text?: unknown } } | undefined
      if (answer === undefined) {
        return inputRequired({
          inputRequests: {
            capital_question: inputRequired.createMessage({
              messages: [
                { role: 'user', content: { type: 'text', text: 'What is the capital of France?' } },
              ],
              maxTokens: 100,
            }),
          },
        }) as never
      }
      return text(`The model said: ${String(answer.content?.text ?? '')}`)
    },
  )
  registry.register(
    'test_input_required_result_list_roots',
    { description: "Asks for the client's roots (MRTR)", policy },
    (extra) => {
      const answer = mcpReqOf(extra).inputResponses?.['client_roots'] as
        { roots?: { uri?: unknown }[] } | undefined
      if (answer === undefined) {
        return inputRequired({
          inputRequests: { client_roots: inputRequired.listRoots() },
        }) as never
      }
      const uris = (answer.roots ?? []).map((root) => String(root.uri))
      return text(`Roots: ${uris.join(', ') || '(none)'}`)
    },
  )
  registry.register(
    'test_input_required_result_request_state',
    { description: 'Round-trips its requestState (MRTR)', policy },
    (extra) => {
      const mcpReq = mcpReqOf(extra)
      if (mcpReq.inputResponses?.['confirm'] === undefined) {
        return inputRequired({
          inputRequests: {
            confirm: inputRequired.elicit({
              message: 'Please confirm',
              requestedSchema: {
                type: 'object',
                properties: { ok: { type: 'boolean' } },
                required: ['ok'],
              },
            }),
          },
          requestState: 'confirm-pending',
        }) as never
      }
      return mcpReq.requestState() === 'confirm-pending'
        ? text('state-ok: confirmed')
        : { ...text('the request state was not the one this tool sent'), isError: true }
    },
  )
  registry.register(
    'test_input_required_result_multiple_inputs',
    { description: 'Asks for three inputs at once (MRTR)', policy },
    (extra) => {
      const mcpReq = mcpReqOf(extra)
      const responses = mcpReq.inputResponses ?? {}
      const keys = ['user_name', 'greeting', 'client_roots']
      if (!keys.every((key) => key in responses) || mcpReq.requestState() !== 'three-inputs') {
        return inputRequired({
          inputRequests: {
            user_name: elicit('What is your name?', 'name'),
            greeting: inputRequired.createMessage({
              messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }],
              maxTokens: 50,
            }),
            client_roots: inputRequired.listRoots(),
          },
          requestState: 'three-inputs',
        }) as never
      }
      return text(`Got all inputs for ${String(accepted(responses, 'user_name')?.['name'])}`)
    },
  )
  registry.register(
    'test_input_required_result_multi_round',
    { description: 'Asks twice, one question per round (MRTR)', policy },
    (extra) => {
      const mcpReq = mcpReqOf(extra)
      const state = mcpReq.requestState()
      const responses = mcpReq.inputResponses
      if (state === 'round-2' && responses?.['step2'] !== undefined) {
        return text(`Done: favourite colour ${String(accepted(responses, 'step2')?.['color'])}`)
      }
      if (state === 'round-1' && responses?.['step1'] !== undefined) {
        return inputRequired({
          inputRequests: { step2: elicit('Step 2: What is your favorite color?', 'color') },
          requestState: 'round-2',
        }) as never
      }
      return inputRequired({
        inputRequests: { step1: elicit('Step 1: What is your name?', 'name') },
        requestState: 'round-1',
      }) as never
    },
  )
  registry.register(
    'test_input_required_result_tampered_state',
    { description: 'Sends a requestState that must come back intact (MRTR)', policy },
    (extra) => {
      const mcpReq = mcpReqOf(extra)
      // A tampered state never gets here: callproof refuses it (-32602) before the tool runs.
      if (mcpReq.requestState() === 'untampered') return text('state intact')
      return inputRequired({
        inputRequests: { confirm: elicit('Please confirm', 'ok') },
        requestState: 'untampered',
      }) as never
    },
  )
  registry.register(
    'test_input_required_result_capabilities',
    { description: 'Asks only for what the client declared it supports (MRTR)', policy },
    (extra) => {
      const mcpReq = mcpReqOf(extra)
      if (mcpReq.inputResponses !== undefined) return text('Thanks for the input')
      const envelope = (mcpReq.envelope ?? {}) as Record<string, unknown>
      const declared = (envelope['io.modelcontextprotocol/clientCapabilities'] ?? {}) as Record<
        string,
        unknown
      >
      const inputRequests: Record<string, InputRequest> = {}
      if (declared['elicitation'] !== undefined) {
        inputRequests['user_name'] = elicit('What is your name?', 'name')
      }
      if (declared['sampling'] !== undefined) {
        inputRequests['greeting'] = inputRequired.createMessage({
          messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }],
          maxTokens: 50,
        })
      }
      if (declared['roots'] !== undefined) inputRequests['client_roots'] = inputRequired.listRoots()
      if (Object.keys(inputRequests).length === 0) {
        return text('The client declared no capability to ask through')
      }
      return inputRequired({ inputRequests }) as never
    },
  )
  registry.prompt(
    'test_input_required_result_prompt',
    { description: 'A prompt that asks for its context first (MRTR)', policy: policies.prompts },
    (extra) => {
      const context = accepted(mcpReqOf(extra).inputResponses, 'user_context')?.['context']
      if (typeof context !== 'string') {
        return inputRequired({
          inputRequests: {
            user_context: elicit('What context should the prompt use?', 'context'),
          },
        }) as never
      }
      return {
        messages: [
          { role: 'user', content: { type: 'text', text: `Use this context: ${context}` } },
        ],
      }
    },
  )
}
