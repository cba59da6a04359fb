// The project files a newcomer and a packager look for: the licence the README names, in the
// repository and in every published package's tarball (each package keeps a copy of the root
// LICENSE, checked identical here), with the package's README; SECURITY, CHANGELOG, CONTRIBUTING.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const read = (path) => readFileSync(join(root, path), 'utf8')
const PUBLISHED = ['core', 'server', 'client', 'dev-auth-server', 'cli']
// The demo's servers, which the cli depends on: published too, so that the cli installs alone.
const EXAMPLES = ['drive', 'insecure-baseline', 'mail']

describe('project files', () => {
  it('LICENSE is the Apache License 2.0 that every package.json names', () => {
    const licence = read('LICENSE')
    expect(licence).toContain(
      'Apache License\n                           Version 2.0, January 2004',
    )
    expect(licence).toContain('END OF TERMS AND CONDITIONS')
    expect(JSON.parse(read('package.json')).license).toBe('Apache-2.0')
    for (const dir of [
      ...PUBLISHED.map((n) => `packages/${n}`),
      ...EXAMPLES.map((n) => `examples/${n}`),
    ]) {
      expect(JSON.parse(read(`${dir}/package.json`)).license).toBe('Apache-2.0')
      expect(read(`${dir}/LICENSE`), `${dir}/LICENSE`).toBe(licence)
    }
  })

  it('every published package packs its LICENSE and README.md', () => {
    const out = execFileSync(
      'npm',
      [
        'pack',
        '--dry-run',
        '--json',
        '--loglevel=error',
        ...PUBLISHED.map((n) => `-w=packages/${n}`),
        ...EXAMPLES.map((n) => `-w=examples/${n}`),
      ],
      { cwd: root, encoding: 'utf8' },
    )
    const packs = JSON.parse(out)
    expect(packs.map((p) => p.name).sort()).toEqual(
      [...PUBLISHED, ...EXAMPLES.map((n) => `example-${n}`)].map((n) => `@callproof/${n}`).sort(),
    )
    for (const pack of packs) {
      const paths = pack.files.map((f) => f.path)
      expect(paths, pack.name).toEqual(expect.arrayContaining(['LICENSE', 'README.md']))
    }
  })

  it('SECURITY.md, CHANGELOG.md and CONTRIBUTING.md say what they must', () => {
    const security = read('SECURITY.md')
    expect(security).toMatch(/## Reporting a vulnerability/)
    expect(security).toMatch(/## Supported versions/)
    expect(security).toMatch(/## Scope/)
    const changelog = read('CHANGELOG.md')
    expect(changelog).toMatch(/## Unreleased/)
    expect(changelog).toMatch(/## 0\.1\.0/)
    expect(changelog).toContain(JSON.parse(read('packages/core/package.json')).version)
    const contributing = read('CONTRIBUTING.md')
    for (const command of [
      'npm run demo',
      'npm test',
      'npm run bench',
      'npx vitest run --project',
    ]) {
      expect(contributing).toContain(command)
    }
  })
})
