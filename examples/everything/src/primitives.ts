/**
 * Everything the MCP conformance suite's server scenarios call (their tool, resource and prompt
 * names and answers), each registered with a callproof policy.
 *
 * @module
 */
import { z } from 'zod'
import { completable } from '@modelcontextprotocol/sdk/server/completable.js'
import { CreateMessageResultSchema, ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js'
import type { ToolPolicy } from '@callproof/core'
import { callerOf, createToolRegistry } from '@callproof/server'
import type { ToolRegistry } from '@callproof/server'
import { registerInputRequired } from './input-required.js'

/** Calling the test tools (all but the public ones). */
export const SCOPE_TOOLS = 'everything:tools'
/** Reading the test resources. */
export const SCOPE_READ = 'everything:read'
/** Getting the test prompts. */
export const SCOPE_PROMPTS = 'everything:prompts'
/** Every scope the server's policies require. */
export const EVERYTHING_SCOPES = [SCOPE_TOOLS, SCOPE_READ, SCOPE_PROMPTS] as const

/** The only subject that may see `test://operator-notes` (hidden from everyone else). */
export const OPERATOR = 'bob'

const TOOLS: ToolPolicy = { scopes: [SCOPE_TOOLS] }
const READ: ToolPolicy = { scopes: [SCOPE_READ] }
const PROMPTS: ToolPolicy = { scopes: [SCOPE_PROMPTS] }

/** A 1×1 red PNG. */
export const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=='

/** A tiny WAV: 8 silent samples, 8 kHz, 8-bit mono (RIFF header written out field by field). */
export const WAV_BASE64 = (() => {
  const samples = 8
  const bytes = new Uint8Array(44 + samples)
  const view = new DataView(bytes.buffer)
  const ascii = (offset: number, text: string) => {
    for (let i = 0; i < text.length; i++) bytes[offset + i] = text.charCodeAt(i)
  }
  ascii(0, 'RIFF')
  view.setUint32(4, 36 + samples, true)
  ascii(8, 'WAVE')
  ascii(12, 'fmt ')
  view.setUint32(16, 16, true) // fmt chunk size
  view.setUint16(20, 1, true) // PCM
  view.setUint16(22, 1, true) // mono
  view.setUint32(24, 8000, true) // sample rate
  view.setUint32(28, 8000, true) // byte rate
  view.setUint16(32, 1, true) // block align
  view.setUint16(34, 8, true) // bits per sample
  ascii(36, 'data')
  view.setUint32(40, samples, true)
  bytes.fill(128, 44) // 8-bit silence
  return Buffer.from(bytes).toString('base64')
})()

/** The JSON Schema 2020-12 input schema of `json_schema_2020_12_tool` (SEP-1613, SEP-2106). */
export const JSON_SCHEMA_2020_12 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: {
    address: {
      $anchor: 'addressDef',
      type: 'object',
      properties: { street: { type: 'string' }, city: { type: 'string' } },
    },
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' },
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false,
} as const

const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] })
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The registry of the everything server: the conformance scenarios' tools, resources and
 * prompts, with policies.
 *
 * @example
 * ```ts
 * const tools = everythingTools()
 * const callproof = createCallproof({ resource, issuers: issuer, tools, jsonResponse: false })
 * ```
 */
export function everythingTools(options: { inputRequired?: boolean } = {}): ToolRegistry {
  const tools = createToolRegistry(
    { name: 'callproof-everything', version: '0.1.0' },
    { logging: true },
  )
  registerTools(tools)
  registerResources(tools)
  registerPrompts(tools)
  // MCP 2026-07-28's Multi Round-Trip tools: on the SDK v2 line only (v1 cannot send them).
  if (options.inputRequired === true)
    registerInputRequired(tools, { tools: TOOLS, prompts: PROMPTS })
  return tools
}

function registerTools(tools: ToolRegistry): void {
  tools.register(
    'test_simple_text',
    { description: 'Returns a simple text response', policy: { public: true } },
    () => text('This is a simple text response for testing.'),
  )
  tools.register(
    'whoami',
    { description: 'The verified caller of this call, as JSON', policy: { public: true } },
    (extra) => text(JSON.stringify(callerOf(extra))),
  )
  tools.register('test_image_content', { description: 'Returns an image', policy: TOOLS }, () => ({
    content: [{ type: 'image', data: PNG_BASE64, mimeType: 'image/png' }],
  }))
  tools.register('test_audio_content', { description: 'Returns audio', policy: TOOLS }, () => ({
    content: [{ type: 'audio', data: WAV_BASE64, mimeType: 'audio/wav' }],
  }))
  tools.register(
    'test_embedded_resource',
    { description: 'Returns an embedded resource', policy: TOOLS },
    () => ({
      content: [
        {
          type: 'resource',
          resource: {
            uri: 'test://embedded-resource',
            mimeType: 'text/plain',
            text: 'This is an embedded resource content.',
          },
        },
      ],
    }),
  )
  tools.register(
    'test_multiple_content_types',
    { description: 'Returns text, an image and a resource', policy: TOOLS },
    () => ({
      content: [
        { type: 'text', text: 'Multiple content types test:' },
        { type: 'image', data: PNG_BASE64, mimeType: 'image/png' },
        {
          type: 'resource',
          resource: {
            uri: 'test://mixed-content-resource',
            mimeType: 'application/json',
            text: JSON.stringify({ test: 'data', value: 123 }),
          },
        },
      ],
    }),
  )
  tools.register(
    'test_tool_with_logging',
    { description: 'Sends three log messages while it runs', policy: TOOLS },
    async (extra) => {
      const log = (data: string) =>
        extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } })
      await log('Tool execution started')
      await pause(50)
      await log('Tool processing data')
      await pause(50)
      await log('Tool execution completed')
      return text('Tool with logging executed successfully')
    },
  )
  tools.register('test_error_handling', { description: 'Always fails', policy: TOOLS }, () => ({
    isError: true,
    content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }],
  }))
  tools.register(
    'test_tool_with_progress',
    { description: 'Reports progress 0, 50, 100 of 100', policy: TOOLS },
    async (extra) => {
      const progressToken = extra._meta?.progressToken
      for (const progress of [0, 50, 100]) {
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress, total: 100 },
          })
        }
        if (progress < 100) await pause(50)
      }
      return text('Tool with progress executed successfully')
    },
  )
  tools.register(
    'test_sampling',
    {
      description: 'Asks the client to sample an LLM',
      inputSchema: { prompt: z.string() },
      policy: TOOLS,
    },
    async ({ prompt }, extra) => {
      const result = await extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: {
            messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
            maxTokens: 100,
          },
        },
        CreateMessageResultSchema,
      )
      const content = result.content as { type: string; text?: string }
      return text(`LLM response: ${content.type === 'text' ? (content.text ?? '') : content.type}`)
    },
  )
  tools.register(
    'test_elicitation',
    {
      description: 'Asks the user for a username and an email',
      inputSchema: { message: z.string() },
      policy: TOOLS,
    },
    async ({ message }, extra) => {
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            message,
            requestedSchema: {
              type: 'object',
              properties: {
                username: { type: 'string', description: "User's response" },
                email: { type: 'string', description: "User's email address" },
              },
              required: ['username', 'email'],
            },
          },
        },
        ElicitResultSchema,
      )
      return text(`User response: ${JSON.stringify(result)}`)
    },
  )
  // The SDK lists a tool's input schema as its Zod schema converts; `.meta()` members are merged
  // into that JSON Schema, so the listing carries the 2020-12 schema exactly, while calls are
  // still validated by the Zod schema (which checks the properties' types only).
  const { type: _type, ...jsonSchema } = JSON_SCHEMA_2020_12
  tools.register(
    'json_schema_2020_12_tool',
    {
      description: 'Tool with JSON Schema 2020-12 features',
      inputSchema: z
        .object({
          name: z.string().optional(),
          address: z.object({ street: z.string(), city: z.string() }).partial().optional(),
          contactMethod: z.enum(['phone', 'email']).optional(),
          phone: z.string().optional(),
          email: z.string().optional(),
        })
        .meta(jsonSchema),
      policy: TOOLS,
    },
    (args) => text(`Received: ${JSON.stringify(args)}`),
  )
  tools.register(
    'test_elicitation_sep1034_defaults',
    { description: 'Elicits with a default for every primitive type', policy: TOOLS },
    async (extra) => {
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            message: 'Please review and update the form fields with defaults',
            requestedSchema: {
              type: 'object',
              properties: {
                name: { type: 'string', description: 'User name', default: 'John Doe' },
                age: { type: 'integer', description: 'User age', default: 30 },
                score: { type: 'number', description: 'User score', default: 95.5 },
                status: {
                  type: 'string',
                  description: 'User status',
                  enum: ['active', 'inactive', 'pending'],
                  default: 'active',
                },
                verified: { type: 'boolean', description: 'Verified', default: true },
              },
            },
          },
        },
        ElicitResultSchema,
      )
      return text(
        `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
      )
    },
  )
  tools.register(
    'test_elicitation_sep1330_enums',
    { description: 'Elicits with every enum variant', policy: TOOLS },
    async (extra) => {
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            message: 'Please select options from the enum fields',
            requestedSchema: {
              type: 'object',
              properties: {
                untitledSingle: {
                  type: 'string',
                  description: 'Untitled single-select',
                  enum: ['option1', 'option2', 'option3'],
                },
                titledSingle: {
                  type: 'string',
                  description: 'Titled single-select',
                  oneOf: [
                    { const: 'value1', title: 'First Option' },
                    { const: 'value2', title: 'Second Option' },
                    { const: 'value3', title: 'Third Option' },
                  ],
                },
                legacyEnum: {
                  type: 'string',
                  description: 'Legacy titled enum',
                  enum: ['opt1', 'opt2', 'opt3'],
                  enumNames: ['Option One', 'Option Two', 'Option Three'],
                },
                untitledMulti: {
                  type: 'array',
                  description: 'Untitled multi-select',
                  items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                },
                titledMulti: {
                  type: 'array',
                  description: 'Titled multi-select',
                  items: {
                    anyOf: [
                      { const: 'value1', title: 'First Choice' },
                      { const: 'value2', title: 'Second Choice' },
                      { const: 'value3', title: 'Third Choice' },
                    ],
                  },
                },
              },
            },
          },
        },
        ElicitResultSchema,
      )
      return text(
        `Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`,
      )
    },
  )
}

function registerResources(tools: ToolRegistry): void {
  tools.resource(
    'static-text',
    'test://static-text',
    { description: 'A static text resource', mimeType: 'text/plain', policy: READ },
    (uri) => ({
      contents: [
        {
          uri: uri.href,
          mimeType: 'text/plain',
          text: 'This is the content of the static text resource.',
        },
      ],
    }),
  )
  tools.resource(
    'static-binary',
    'test://static-binary',
    { description: 'A static binary resource (a PNG)', mimeType: 'image/png', policy: READ },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG_BASE64 }] }),
  )
  tools.resource(
    'watched-resource',
    'test://watched-resource',
    { description: 'A resource to subscribe to', mimeType: 'text/plain', policy: READ },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'watched' }] }),
  )
  tools.resource(
    'operator-notes',
    'test://operator-notes',
    {
      description: 'Notes only the operator may read (hidden from everyone else)',
      mimeType: 'text/plain',
      policy: { callers: { subjects: [OPERATOR] } },
    },
    (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'operator only' }] }),
  )
  tools.resourceTemplate(
    'template',
    'test://template/{id}/data',
    {
      description: 'A resource template with an id',
      mimeType: 'application/json',
      policy: READ,
      complete: { id: (value) => ['1', '2', '3', '123'].filter((id) => id.startsWith(value)) },
    },
    (uri, { id }) => ({
      contents: [
        {
          uri: uri.href,
          mimeType: 'application/json',
          text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${String(id)}` }),
        },
      ],
    }),
  )
}

function registerPrompts(tools: ToolRegistry): void {
  tools.prompt(
    'test_simple_prompt',
    { description: 'A prompt without arguments', policy: PROMPTS },
    () => ({
      messages: [
        { role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } },
      ],
    }),
  )
  tools.prompt(
    'test_prompt_with_arguments',
    {
      description: 'A prompt with two arguments',
      argsSchema: {
        arg1: completable(z.string().describe('First test argument'), (value) =>
          ['paris', 'park', 'party', 'test', 'testing'].filter((v) => v.startsWith(value)),
        ),
        arg2: z.string().describe('Second test argument'),
      },
      policy: PROMPTS,
    },
    ({ arg1, arg2 }) => ({
      messages: [
        {
          role: 'user',
          content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` },
        },
      ],
    }),
  )
  tools.prompt(
    'test_prompt_with_embedded_resource',
    {
      description: 'A prompt that embeds a resource',
      argsSchema: { resourceUri: z.string().describe('URI of the resource to embed') },
      policy: PROMPTS,
    },
    ({ resourceUri }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'resource',
            resource: {
              uri: resourceUri,
              mimeType: 'text/plain',
              text: 'Embedded resource content for testing.',
            },
          },
        },
        {
          role: 'user',
          content: { type: 'text', text: 'Please process the embedded resource above.' },
        },
      ],
    }),
  )
  tools.prompt(
    'test_prompt_with_image',
    { description: 'A prompt with an image', policy: PROMPTS },
    () => ({
      messages: [
        { role: 'user', content: { type: 'image', data: PNG_BASE64, mimeType: 'image/png' } },
        { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
      ],
    }),
  )
}
