/** core runs on Node, Deno, Bun and Workers: no source file imports a Node built-in. */
import { readFileSync, readdirSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const src = fileURLToPath(new URL('../src/', import.meta.url))

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

/** Every module specifier: static imports/exports, dynamic import(), require(). */
function specifiers(code: string): string[] {
  const found: string[] = []
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1]!)
  return found
}

const builtins = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]))

describe('portability', () => {
  const sources = files(src)

  it('finds the sources', () => {
    expect(sources.length).toBeGreaterThanOrEqual(10)
  })

  it('the specifier scanner sees what it must see', () => {
    expect(
      specifiers(
        `import { x } from 'node:fs'\nimport type { Y } from "crypto"\nexport * from './a.js'\nconst m = await import('fs')\nimport 'path'`,
      ),
    ).toEqual(['node:fs', 'crypto', './a.js', 'path', 'fs'])
  })

  it.each(files(src).map((f) => [f.slice(src.length), f]))(
    '%s imports no node: module or Node built-in',
    (_, file) => {
      const offending = specifiers(readFileSync(file, 'utf8')).filter(
        (s) => s.startsWith('node:') || builtins.has(s) || builtins.has(s.split('/')[0]!),
      )
      expect(offending).toEqual([])
    },
  )

  it('uses no Node-only globals (Buffer, process, require)', () => {
    for (const file of sources) {
      const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
      expect(code, file).not.toMatch(/\b(Buffer|process|require|__dirname)\b/)
    }
  })
})
