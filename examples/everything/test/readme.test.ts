/**
 * The root README's server snippet runs as printed: its code block is taken from README.md, its
 * two ports are replaced with free ones (the real development authorization server on one), and
 * it is run in its own process; then the real SDK client, signing through @callproof/client,
 * lists and uses its tool, resource and prompt. Twice: as printed (SDK v1), and with its one import
 * changed to `@callproof/server/v2`, as the README says for the MCP SDK v2.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { devInteraction, startDevAuthServer } from '@callproof/dev-auth-server'
import type { DevAuthServer } from '@callproof/dev-auth-server'
import { createCallproofFetch, systemBrowserInteraction } from '@callproof/client'

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
// Under the repository's node_modules, so that the snippet's imports resolve as in a project.
const scratch = join(repoRoot, 'node_modules', '.cache', 'callproof-readme', crypto.randomUUID())

const auths: DevAuthServer[] = []
const children: ChildProcess[] = []
const closers: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const close of closers) await close()
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null) {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  }
  for (const auth of auths) await auth.close()
  rmSync(scratch, { recursive: true, force: true })
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

function snippet(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## A server in'))
  const block = /```ts\n([\s\S]*?)```/.exec(section)
  if (block === null) throw new Error('README.md has no server snippet')
  return block[1]!
}

/** Runs the snippet on `port` until its metadata answers; `false` when the port was taken. */
async function run(code: string, port: number): Promise<boolean> {
  mkdirSync(scratch, { recursive: true })
  // An ES module, as in a project with "type": "module" (the snippet uses top-level imports).
  writeFileSync(join(scratch, 'package.json'), '{ "type": "module" }')
  const file = join(scratch, `server-${port}.ts`)
  writeFileSync(file, code)
  let output = ''
  const child = spawn(
    process.execPath,
    ['--conditions=@callproof/source', '--import', 'tsx', file],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  children.push(child)
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const metadata = `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`
  const deadline = Date.now() + 45_000
  for (;;) {
    if (child.exitCode !== null) {
      if (/EADDRINUSE/.test(output)) return false
      throw new Error(`the snippet exited with ${child.exitCode}:\n${output}`)
    }
    const answer = await fetch(metadata).catch(() => undefined)
    if (answer?.ok) return true
    if (Date.now() > deadline) throw new Error(`the snippet did not come up:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

it.each(['v1', 'v2'] as const)(
  'the README server snippet serves its tool, resource and prompt (SDK %s)',
  { timeout: 120_000 },
  async (sdk) => {
    const printed = snippet()
    const code =
      sdk === 'v2'
        ? printed.replace("from '@callproof/server'", "from '@callproof/server/v2'")
        : printed
    if (sdk === 'v2') expect(code).toContain("from '@callproof/server/v2'")
    expect(code).toContain('tools.register(')
    expect(code).toContain('tools.resource(')
    expect(code).toContain('tools.prompt(')
    let url = ''
    for (let attempt = 1; url === ''; attempt++) {
      if (attempt > 3) throw new Error('three probed ports were taken')
      const port = await freePort()
      const resource = `http://127.0.0.1:${port}/mcp`
      const auth = await startDevAuthServer({
        resources: [{ uri: resource, scopes: ['notes:read', 'notes:write'] }],
        logger: { warn: () => {}, info: () => {} },
      })
      const runnable = code
        .replaceAll('http://127.0.0.1:3000', `http://127.0.0.1:${port}`)
        .replaceAll('http://127.0.0.1:4000', auth.issuer)
        .replace('port: 3000', `port: ${port}`)
      auths.push(auth)
      if (await run(runnable, port)) url = resource
    }

    const pages = devInteraction({ user: 'alice' })
    const interaction = systemBrowserInteraction({
      open: async (href) => {
        const callback = await pages.authorize(new URL(href), { reason: 'authorize' })
        await (await fetch(callback)).body?.cancel()
      },
    })
    closers.push(() => interaction.close())
    const { fetch } = await createCallproofFetch(url, { interaction, development: true })
    const client = new Client({ name: 'readme', version: '0.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch }))
    closers.push(() => client.close())

    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['delete_note'])
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['notes://readme'])
    expect((await client.readResource({ uri: 'notes://readme' })).contents).toEqual([
      { uri: 'notes://readme', text: 'Welcome to your notes' },
    ])
    const prompt = await client.getPrompt({ name: 'summarize', arguments: { id: 'n1' } })
    expect(prompt.messages).toEqual([
      { role: 'user', content: { type: 'text', text: 'Summarize n1' } },
    ])
  },
)
