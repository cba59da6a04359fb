// The parts of `npm run pack:install` that decide what it runs and what it accepts: the README's
// snippets and dependencies as it reads them (so the whole run fails when the README drifts), and
// the tarball checks on manifests that break each rule. The whole run (pack, install, snippets,
// demo) is `npm run pack:install`, a step of `npm test`.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  clip,
  readmeSetup,
  sectionBlocks,
  snippetImports,
  tarballProblems,
} from '../pack-install.mjs'

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')

describe('the README as pack:install reads it', () => {
  it('finds one server and one client snippet, and the dependencies named for them', () => {
    const [server, ...moreServers] = sectionBlocks(readme, '## A server in', 'ts')
    const [client, ...moreClients] = sectionBlocks(readme, '## A client in 10 lines', 'ts')
    expect(moreServers).toEqual([])
    expect(moreClients).toEqual([])
    expect(server).toContain('createCallproof(')
    expect(client).toContain('connect(')
    const setup = readmeSetup(readme)
    expect(setup.settings).toEqual(['type=module'])
    for (const name of snippetImports(server + client)) expect(setup.packages).toContain(name)
    expect(setup.packages).toContain('tsx')
  })

  it('a snippet importing a package the README does not name is seen', () => {
    const drifted = readme.replace(
      "import { z } from 'zod'",
      "import { z } from 'zod'\nimport { cors } from 'hono/cors'\nimport pino from 'pino'",
    )
    const [server] = sectionBlocks(drifted, '## A server in', 'ts')
    const named = readmeSetup(drifted).packages
    expect(snippetImports(server).filter((name) => !named.includes(name))).toEqual(['pino'])
  })

  it('an install line that loses a dependency is seen', () => {
    const drifted = readme.replace('@hono/node-server zod\n', '@hono/node-server\n')
    expect(readmeSetup(drifted).packages).not.toContain('zod')
  })

  it('a missing section is an error naming it', () => {
    expect(() => sectionBlocks('# x\n', '## A server in', 'ts')).toThrow(
      'README has no section "## A server in"',
    )
  })
})

describe('tarball checks', () => {
  const manifest = {
    name: '@callproof/x',
    engines: { node: '>=20.19' },
    exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
    bin: { x: './dist/bin.js' },
  }
  const files = ['package.json', 'LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts']

  it('a complete tarball passes', () => {
    expect(tarballProblems(manifest, [...files, 'dist/bin.js'])).toEqual([])
  })

  it('each rule broken is named', () => {
    expect(
      tarballProblems(
        {
          ...manifest,
          engines: { node: '>=18' },
          exports: { '.': { default: './dist/index.js', types: './dist/index.d.ts' } },
        },
        [...files.filter((f) => f !== 'LICENSE'), 'dist/.tsbuildinfo', 'test/a.test.ts'],
      ),
    ).toEqual([
      'LICENSE missing',
      'holds dist/.tsbuildinfo, test/a.test.ts',
      'engines.node is ">=18", not ">=20.19"',
      'exports["."]: types after default',
      'bin ./dist/bin.js not packed',
    ])
    expect(tarballProblems({ ...manifest, private: true, bin: undefined }, files)).toEqual([
      'is private',
    ])
    expect(
      tarballProblems({ ...manifest, bin: undefined }, ['package.json', 'LICENSE', 'README.md']),
    ).toEqual([
      'exports["."] → ./dist/index.d.ts not packed',
      'exports["."] → ./dist/index.js not packed',
    ])
  })

  it('child output in a message is one bounded line without control characters', () => {
    expect(clip('a\u001b[31mb\nc', 100)).toBe('a [31mb c')
    expect(clip('x'.repeat(500), 10)).toBe(`${'x'.repeat(10)}…`)
  })
})
