#!/usr/bin/env node
// The callproof conformance client for @modelcontextprotocol/conformance (`client --suite auth`).
//
//   node packages/client/conformance/client.mjs <server-url>                 (after `npm run build`)
//   node --conditions=@callproof/source --import tsx packages/client/conformance/client.mjs <url>
//
// The suite sets MCP_CONFORMANCE_SCENARIO and, for scenarios that need it, MCP_CONFORMANCE_CONTEXT
// (JSON: pre-registered client id/secret, private key for private_key_jwt, the tool calls to make).
// The client connects with `connect()` of `@callproof/client/v2` (SDK v2, which negotiates
// 2026-07-28 or falls back to the 2025-11-25 handshake), lists tools, calls the context's tool
// calls or else every listed tool (arguments made from its input schema), answers a server's
// elicitation input requests (Multi Round-Trip Requests) with an acceptance, and exits 0; any error
// exits 1 (scenarios that test refusals expect exactly that). CALLPROOF_CONFORMANCE_SDK=v1 runs
// `@callproof/client`'s `connect()` on SDK v1 instead (2025-11-25 only).
const sdk = process.env.CALLPROOF_CONFORMANCE_SDK === 'v1' ? 'v1' : 'v2'
const { connect } = await import(sdk === 'v1' ? '@callproof/client' : '@callproof/client/v2')

// The suite's authorization servers answer the authorization request with an immediate redirect
// to the redirect URI, so the headless interaction reads the Location header instead of a user.
const REDIRECT_URI = 'http://localhost:3000/callback'
const CLIENT_METADATA_URL = 'https://conformance-test.local/client-metadata.json'

/** @type {import('@callproof/client').Interaction} */
const redirectFollower = {
  redirectUri: () => REDIRECT_URI,
  async authorize(url) {
    let next = url
    for (let hop = 0; hop < 10; hop++) {
      const response = await fetch(next, { redirect: 'manual' })
      await response.body?.cancel()
      const location = response.headers.get('location')
      if (!location)
        throw new Error(`authorization endpoint answered ${response.status} without a redirect`)
      const target = new URL(location, next)
      if (target.href.startsWith(REDIRECT_URI)) return target
      next = target
    }
    throw new Error('too many redirects during authorization')
  },
}

function context() {
  const raw = process.env.MCP_CONFORMANCE_CONTEXT
  return raw ? JSON.parse(raw) : {}
}

function optionsFor(scenario) {
  const ctx = context()
  const base = {
    development: true, // the suite's servers run on http://localhost
    requireBoundTokens: false, // most scenarios issue Bearer tokens; DPoP ones are bound
    clientInfo: { name: 'callproof-conformance-client', version: '0.1.0' },
  }
  switch (scenario) {
    case 'auth/client-credentials-jwt':
      return {
        ...base,
        clientCredentials: {
          clientId: ctx.client_id,
          privateKey: ctx.private_key_pem,
          alg: ctx.signing_algorithm ?? 'ES256',
        },
      }
    case 'auth/client-credentials-basic':
      return {
        ...base,
        clientCredentials: { clientId: ctx.client_id, clientSecret: ctx.client_secret },
      }
    case 'auth/enterprise-managed-authorization':
      // The suite's enterprise IdP issued the user's ID token; the client trades it there for an
      // ID-JAG and presents that at the MCP authorization server (client_secret_basic).
      return {
        ...base,
        enterpriseAuthorization: {
          clientId: ctx.client_id,
          clientSecret: ctx.client_secret,
          idp: { issuer: ctx.idp_issuer, clientId: ctx.idp_client_id },
          idToken: ctx.idp_id_token,
        },
      }
    case 'auth/wif-jwt-bearer':
      return {
        ...base,
        workloadIdentity: { clientId: ctx.client_id, assertion: ctx.valid_jwt },
      }
    case 'auth/2025-03-26-oauth-metadata-backcompat':
    case 'auth/2025-03-26-oauth-endpoint-fallback':
      // Servers of the 2025-03-26 revision publish no protected resource metadata: the weaker
      // discovery of that revision, opted in for these scenarios only.
      return {
        ...base,
        legacyDiscovery: true,
        interaction: redirectFollower,
        registration: { clientMetadataUrl: CLIENT_METADATA_URL },
      }
    case 'auth/pre-registration':
      return {
        ...base,
        interaction: redirectFollower,
        registration: {
          clientId: ctx.client_id,
          ...(ctx.client_secret && { clientSecret: ctx.client_secret }),
        },
      }
    default:
      return {
        ...base,
        interaction: redirectFollower,
        registration: { clientMetadataUrl: CLIENT_METADATA_URL },
      }
  }
}

/**
 * Arguments for a tool from its input schema: a sample value of each primitive property. The
 * `json_schema_echo` tool of `json-schema-2020-12-preservation` gets the other tool's input schema
 * as received, to show that nothing of it was lost.
 */
function argumentsFor(tool, tools) {
  if (tool.name === 'json_schema_echo') {
    return { schema: tools.find((t) => t.name !== tool.name)?.inputSchema ?? {} }
  }
  const samples = { string: 'sample', number: 1, integer: 1, boolean: true }
  const args = {}
  for (const [name, property] of Object.entries(tool.inputSchema?.properties ?? {})) {
    if (property?.type in samples) args[name] = samples[property.type]
  }
  return args
}

/** An error's message, bounded and without control characters (it may quote a server's text). */
function printable(err) {
  return (
    String(err?.message ?? err)
      // eslint-disable-next-line no-control-regex -- control characters are what is removed
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
      .slice(0, 300)
  )
}

async function main() {
  const serverUrl = process.argv[2]
  const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? ''
  if (!serverUrl) {
    console.error('usage: client.mjs <server-url>')
    process.exit(2)
  }
  const options = optionsFor(scenario)
  const client = await connect(
    serverUrl,
    sdk === 'v1' ? options : { ...options, capabilities: { elicitation: {} } },
  )
  if (sdk === 'v2') {
    // Multi Round-Trip Requests: SDK v2 fulfils a tool's input requests through this handler.
    client.setRequestHandler('elicitation/create', () => ({
      action: 'accept',
      content: { confirmed: true },
    }))
  }
  const { tools } = await client.listTools()
  const calls = Array.isArray(context().toolCalls)
    ? context().toolCalls
    : tools.map((t) => ({ name: t.name, arguments: argumentsFor(t, tools) }))
  for (const call of calls) {
    try {
      await client.callTool(call)
    } catch (err) {
      // In the authorization scenarios a refused call is the outcome under test: exit 1. Elsewhere
      // the scenario judges the requests it saw, and one tool the server does not serve (or whose
      // answer SDK v2 rejects) must not hide the others.
      if (scenario.startsWith('auth/')) throw err
      console.error(`callproof conformance client: ${call.name}: ${printable(err)}`)
    }
  }
  await client.close()
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`callproof conformance client: ${err?.name ?? 'Error'}: ${err?.message ?? err}`)
    process.exit(1)
  },
)
