/**
 * Per-caller downstream authorization, end to end with the real pieces: the development
 * authorization server (oidc-provider, token exchange with its policy), the callproof drive with
 * its `email_file` tool, this mail API in front of it, and two users' agents (the callproof
 * client and the MCP SDK) signing in through the real login pages.
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createServer as createHttpServer, request as httpRequest } from 'node:http'
import type { Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as oauth from 'oauth4webapi'
import { decodeJwt, exportJWK } from 'jose'
import { createProof } from '@callproof/core'
import { connect } from '@callproof/client'
import {
  ACCESS_TOKEN_TYPE,
  TOKEN_EXCHANGE_GRANT,
  devInteraction,
  startDevAuthServer,
} from '@callproof/dev-auth-server'
import type { DevAuthServer } from '@callproof/dev-auth-server'
import { DOWNSTREAM_META_KEY, startDrive } from '@callproof/example-drive'
import type { RunningDrive } from '@callproof/example-drive'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { startMail } from '../src/index.js'
import type { RunningMail } from '../src/index.js'
import { startRedisServer } from '../../../packages/server/test/support/redis-server.js'
import type { TestRedisServer } from '../../../packages/server/test/support/redis-server.js'

const DRIVE_CLIENT = 'drive-mcp'
/** A registered MCP server that the exchange policy does not allow to reach the mail API. */
const ROGUE_CLIENT = 'rogue-mcp'
const insecure = { [oauth.allowInsecureRequests]: true } as const
const silent = { info() {}, warn() {}, error() {} }

interface World {
  as: DevAuthServer
  mail: RunningMail
  drive: RunningDrive
  rogue: RunningDrive
  /** A load balancer in front of drive instances that share one Redis, at `lbPort`. */
  lb: Balancer
  redis: TestRedisServer
  /** Starts one more drive instance behind the balancer (on the shared Redis). */
  startInstance(): Promise<RunningDrive>
}

/**
 * A load balancer for tests: one public origin (the shared resource URI), forwarding every
 * request to the instance the test picks, so that a test says which instance serves a call.
 */
interface Balancer {
  readonly url: string
  /** Sends the next requests to `instance`. */
  route(instance: RunningDrive): void
  close(): Promise<void>
}

async function startBalancer(port: number): Promise<Balancer> {
  let target: URL | undefined
  const server: Server = createHttpServer((req, res) => {
    if (target === undefined) {
      res.writeHead(503).end()
      return
    }
    // The Host header is kept: the instances serve the balancer's origin (their resource).
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => res.headersSent || res.writeHead(502).end())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    route(instance) {
      target = new URL(instance.origin)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

let world: World
const clientKeys: Record<string, CryptoKeyPair> = {}
const open: Client[] = []
const instances: RunningDrive[] = []

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** The authorization server must know the drives' and the mail API's URIs before they listen. */
async function startWorld(): Promise<World> {
  const [drivePort, roguePort, mailPort, lbPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ]
  const driveResource = `http://127.0.0.1:${drivePort}/mcp`
  const lbResource = `http://127.0.0.1:${lbPort}/mcp`
  const rogueResource = `http://127.0.0.1:${roguePort}/mcp`
  const mailResource = `http://127.0.0.1:${mailPort}/`
  const registered = async (id: string) => ({
    client_id: id,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [{ ...(await exportJWK(clientKeys[id]!.publicKey)), alg: 'ES256' }] },
    grant_types: [TOKEN_EXCHANGE_GRANT],
    response_types: [],
    redirect_uris: [],
  })
  const scopes = ['drive:read', 'drive:write', 'drive:share']
  const as = await startDevAuthServer({
    resources: [
      { uri: driveResource, scopes },
      { uri: rogueResource, scopes },
      { uri: lbResource, scopes },
    ],
    clients: [await registered(DRIVE_CLIENT), await registered(ROGUE_CLIENT)],
    tokenExchange: [
      {
        client: DRIVE_CLIENT,
        subject: driveResource,
        resource: mailResource,
        scopes: ['mail:send'],
      },
      // The same MCP server (one client, one key), reached through the balancer.
      { client: DRIVE_CLIENT, subject: lbResource, resource: mailResource, scopes: ['mail:send'] },
    ],
    logger: silent,
  })
  const mail = await startMail({ issuer: as.issuer, actors: [DRIVE_CLIENT], port: mailPort })
  const drive = await startDrive({
    issuer: as.issuer,
    port: drivePort,
    mail: {
      url: mail.origin,
      clientId: DRIVE_CLIENT,
      clientKey: clientKeys[DRIVE_CLIENT]!.privateKey,
    },
  })
  const rogue = await startDrive({
    issuer: as.issuer,
    port: roguePort,
    mail: {
      url: mail.origin,
      clientId: ROGUE_CLIENT,
      clientKey: clientKeys[ROGUE_CLIENT]!.privateKey,
    },
  })
  // The balancer first: its probed port may have been taken (then the world is started again).
  const lb = await startBalancer(lbPort)
  const redis = await startRedisServer()
  const startInstance = async () => {
    const instance = await startDrive({
      issuer: as.issuer,
      resource: lbResource,
      redis: redis.url,
      mail: {
        url: mail.origin,
        clientId: DRIVE_CLIENT,
        clientKey: clientKeys[DRIVE_CLIENT]!.privateKey,
      },
    })
    instances.push(instance)
    return instance
  }
  return { as, mail, drive, rogue, lb, redis, startInstance }
}

beforeAll(async () => {
  for (const id of [DRIVE_CLIENT, ROGUE_CLIENT])
    clientKeys[id] = await oauth.generateKeyPair('ES256')
  // Ports are probed before the servers bind them; another process may take one in between.
  for (let attempt = 1; ; attempt++) {
    try {
      world = await startWorld()
      return
    } catch (error) {
      if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt === 3) throw error
    }
  }
})
afterAll(async () => {
  for (const client of open) await client.close().catch(() => undefined)
  await world?.drive.close()
  await world?.rogue.close()
  for (const instance of instances) await instance.close().catch(() => undefined)
  await world?.lb.close()
  await world?.redis.stop()
  await world?.mail.close()
  await world?.as.close()
})

/** An agent signed in as `user`, holding its key and seeing the headers it sends. */
async function agent(user: string, url = world.drive.url) {
  const keyPair = await oauth.generateKeyPair('ES256')
  const sent: Headers[] = []
  let refreshToken: string | undefined
  const recording: typeof fetch = async (input, init) => {
    sent.push(new Headers(init?.headers))
    const response = await fetch(input, init)
    // The agent's own sign-in, as the authorization server answered it (to revoke it later).
    if (String(input instanceof Request ? input.url : input) === `${world.as.issuer}/token`) {
      const body = (await response
        .clone()
        .json()
        .catch(() => ({}))) as { refresh_token?: string }
      refreshToken = body.refresh_token ?? refreshToken
    }
    return response
  }
  const client = await connect(url, {
    interaction: devInteraction({ user }),
    development: true,
    keyPair,
    fetch: recording,
    scopes: ['drive:read', 'drive:write', 'drive:share'],
    clientInfo: { name: `${user}-agent`, version: '0.1.0' },
  })
  open.push(client)
  const call = async (name: string, args: Record<string, unknown>) => {
    const result = (await client.callTool({ name, arguments: args })) as {
      content: { type: string; text: string }[]
      isError?: boolean
    }
    return { text: result.content.map((c) => c.text).join(''), isError: result.isError === true }
  }
  const accessToken = () => {
    const header = [...sent]
      .reverse()
      .find((h) => h.has('authorization'))
      ?.get('authorization')
    return header?.replace(/^DPoP /, '')
  }
  return { client, call, keyPair, accessToken, refreshToken: () => refreshToken }
}

/** The user signs out at the authorization server: the agent's refresh token, and with it the grant, is revoked (RFC 7009). */
async function revokeSignIn(user: Awaited<ReturnType<typeof agent>>): Promise<void> {
  const url = new URL(world.as.issuer)
  const as = await oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, insecure))
  const clientId = String(decodeJwt(user.accessToken()!)['client_id'])
  const response = await oauth.revocationRequest(
    as,
    { client_id: clientId },
    oauth.None(),
    user.refreshToken()!,
    insecure,
  )
  await oauth.processRevocationResponse(response)
}

describe('email_file: every call reaches the mail API as its own caller', () => {
  it('lists the downstream service the tool uses', async () => {
    const alice = await agent('alice')
    const { tools } = await alice.client.listTools()
    const tool = tools.find((t) => t.name === 'email_file')
    expect(tool?._meta?.[DOWNSTREAM_META_KEY]).toEqual(['mail'])
    // The registry publishes the declaration with the tool's requirements.
    expect(tool?._meta?.['callproof/policy']).toMatchObject({
      scopes: ['drive:share'],
      downstream: ['mail'],
    })
  })

  it('sends alice’s mail as alice and bob’s as bob, each with a token of their own', async () => {
    const alice = await agent('alice')
    const bob = await agent('bob')
    await alice.call('write_file', { path: 'memo.txt', content: 'alice’s memo' })
    await bob.call('write_file', { path: 'memo.txt', content: 'bob’s memo' })
    const before = world.mail.sent().length

    const a1 = await alice.call('email_file', { path: 'memo.txt', to: 'carol@example.com' })
    const b1 = await bob.call('email_file', { path: 'memo.txt', to: 'carol@example.com' })
    const a2 = await alice.call('email_file', { path: 'memo.txt', to: 'dave@example.com' })
    const b2 = await bob.call('email_file', { path: 'memo.txt', to: 'dave@example.com' })
    for (const r of [a1, b1, a2, b2]) expect(r.isError, r.text).toBe(false)
    expect(JSON.parse(b1.text)).toMatchObject({ from: 'bob' })

    const [ma1, mb1, ma2, mb2] = world.mail.sent().slice(before)
    expect([ma1, mb1, ma2, mb2].map((m) => [m?.from, m?.actor, m?.text])).toEqual([
      ['alice', DRIVE_CLIENT, 'alice’s memo'],
      ['bob', DRIVE_CLIENT, 'bob’s memo'],
      ['alice', DRIVE_CLIENT, 'alice’s memo'],
      ['bob', DRIVE_CLIENT, 'bob’s memo'],
    ])
    // Every call is its own exchange (the drive does not reuse credentials): four tokens, and
    // bob's are never alice's.
    expect(new Set([ma1, mb1, ma2, mb2].map((m) => m!.tokenId)).size).toBe(4)
  })

  it('refuses alice’s next email_file with an error naming mail once her grant is revoked at the authorization server', async () => {
    const alice = await agent('alice')
    const first = await alice.call('email_file', { path: 'README.md', to: 'carol@example.com' })
    expect(first.isError, first.text).toBe(false)
    await revokeSignIn(alice)
    const before = world.mail.sent().length
    // Her access token has not expired, so the drive still verifies her call; the exchange is
    // refused, and no earlier credential is used instead.
    const refused = await alice.call('email_file', { path: 'README.md', to: 'carol@example.com' })
    expect(refused.isError).toBe(true)
    expect(refused.text).toMatch(
      /^no mail credential for this caller: the authorization server refused \(invalid_grant: .*the grant behind subject_token has been revoked/,
    )
    expect(world.mail.sent().length).toBe(before)
  })

  it('answers with an error naming the mail service when the exchange policy forbids it', async () => {
    const alice = await agent('alice', world.rogue.url)
    const before = world.mail.sent().length
    const result = await alice.call('email_file', { path: 'README.md', to: 'carol@example.com' })
    expect(result.isError).toBe(true)
    expect(result.text).toMatch(
      /^no mail credential for this caller: the authorization server refused \(unauthorized_client/,
    )
    expect(world.mail.sent().length).toBe(before)
  })
})

describe('two drive instances on one Redis, and restarts', () => {
  it('send every mail as its own caller whichever instance serves it, and bob never obtains alice’s token', async () => {
    const [first, second] = [await world.startInstance(), await world.startInstance()]
    world.lb.route(first)
    const alice = await agent('alice', world.lb.url)
    world.lb.route(second)
    const bob = await agent('bob', world.lb.url)
    const before = world.mail.sent().length
    const send = async (user: typeof alice, instance: RunningDrive) => {
      world.lb.route(instance)
      const result = await user.call('email_file', { path: 'README.md', to: 'carol@example.com' })
      expect(result.isError, result.text).toBe(false)
    }
    // Each caller on both instances, in both orders.
    await send(alice, first)
    await send(bob, first)
    await send(bob, second)
    await send(alice, second)
    // Both instances restart (new processes: nothing in memory) on the same Redis.
    await first.close()
    await second.close()
    const restarted = await world.startInstance()
    await send(bob, restarted)
    await send(alice, restarted)
    const again = await world.startInstance()
    await send(alice, again)
    await send(bob, again)

    const mails = world.mail.sent().slice(before)
    expect(mails.map((m) => [m.from, m.actor])).toEqual(
      ['alice', 'bob', 'bob', 'alice', 'bob', 'alice', 'alice', 'bob'].map((u) => [
        u,
        DRIVE_CLIENT,
      ]),
    )
    const tokensOf = (user: string) =>
      new Set(mails.filter((m) => m.from === user).map((m) => m.tokenId))
    const bobs = tokensOf('bob')
    for (const id of tokensOf('alice')) expect(bobs.has(id)).toBe(false)
    // No mail credential is kept in the shared store: it holds replay and session state only.
    const keys = await world.redis.command('KEYS', '*')
    for (const id of [...tokensOf('alice'), ...bobs]) expect(keys).not.toContain(id)
  })
})

describe('the mail API accepts only delegated, key-bound tokens for itself', () => {
  const post = (headers: Record<string, string>) =>
    fetch(`${world.mail.origin}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ to: 'carol@example.com', subject: 's', text: 't' }),
    })
  const proof = (keyPair: CryptoKeyPair, token: string) =>
    createProof(keyPair, { htm: 'POST', htu: `${world.mail.origin}/messages`, accessToken: token })

  /** A mail token obtained exactly as the drive does, bound to `dpopKey`. */
  async function exchanged(subjectToken: string, dpopKey: CryptoKeyPair): Promise<string> {
    const url = new URL(world.as.issuer)
    const as = await oauth.processDiscoveryResponse(
      url,
      await oauth.discoveryRequest(url, insecure),
    )
    const client: oauth.Client = { client_id: DRIVE_CLIENT }
    const response = await oauth.genericTokenEndpointRequest(
      as,
      client,
      oauth.PrivateKeyJwt(clientKeys[DRIVE_CLIENT]!.privateKey),
      TOKEN_EXCHANGE_GRANT,
      {
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        resource: world.mail.resource,
        scope: 'mail:send',
      },
      { DPoP: oauth.DPoP(client, dpopKey), ...insecure },
    )
    return (await oauth.processGenericTokenEndpointResponse(as, client, response)).access_token
  }

  it('refuses the caller’s own token forwarded, even with a valid proof of the caller’s key', async () => {
    const alice = await agent('alice')
    await alice.call('list_files', {})
    const token = alice.accessToken()!
    const response = await post({
      authorization: `DPoP ${token}`,
      dpop: await proof(alice.keyPair, token),
    })
    expect(response.status).toBe(401)
    expect(((await response.json()) as { error: string }).error).toBe('invalid_token')
    expect(world.mail.refused().at(-1)?.reason).toMatch(/aud/)
  })

  it('refuses an exchanged token used with another key, as Bearer, or with a replayed proof', async () => {
    const alice = await agent('alice')
    await alice.call('list_files', {})
    const serverKey = await oauth.generateKeyPair('ES256')
    const token = await exchanged(alice.accessToken()!, serverKey)
    const thief = await oauth.generateKeyPair('ES256')

    const stolen = await post({ authorization: `DPoP ${token}`, dpop: await proof(thief, token) })
    expect(stolen.status).toBe(401)
    expect(world.mail.refused().at(-1)?.reason).toMatch(/not the key the token is bound to/)

    const bearer = await post({ authorization: `Bearer ${token}` })
    expect(bearer.status).toBe(401)

    const good = await proof(serverKey, token)
    const first = await post({ authorization: `DPoP ${token}`, dpop: good })
    expect(first.status).toBe(201)
    expect(((await first.json()) as { from: string }).from).toBe('alice')
    const replayed = await post({ authorization: `DPoP ${token}`, dpop: good })
    expect(replayed.status).toBe(401)
    expect(world.mail.refused().at(-1)?.reason).toMatch(/used before/)
  })
})
