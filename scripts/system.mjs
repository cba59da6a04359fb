// The system programs the real-parts tests need — redis-server and a Chromium — found the same way
// by `npm test` (to say what is missing before anything runs) and by every test that starts them.
// They are installed by the machine's package manager (`.ci/run` does it on Debian), never by
// `npm test`: installing system packages is the machine owner's decision.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** Where Chromium (or Chrome) usually is, after `CHROMIUM_PATH`: Debian/Ubuntu, then macOS. */
const CHROMIUM_LOCATIONS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
]

/**
 * The flags every test launches Chromium with: headless, no sandbox (containers run as root), and
 * nothing that reaches the network on its own (tests talk to 127.0.0.1 only).
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
]

function executable(path) {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The first executable `name` on PATH, or undefined. */
function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && executable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/**
 * The Chromium to launch: `CHROMIUM_PATH` when set (it must be executable), else the first of the
 * usual locations. Undefined when there is none.
 */
export function findChromium() {
  const chosen = process.env.CHROMIUM_PATH
  if (chosen !== undefined && chosen !== '') return executable(chosen) ? chosen : undefined
  return CHROMIUM_LOCATIONS.find(executable)
}

/**
 * The redis-server to start: `REDIS_SERVER_PATH` when set, else the one on PATH, else Debian's
 * and Homebrew's locations. Undefined when there is none.
 */
export function findRedisServer() {
  const chosen = process.env.REDIS_SERVER_PATH
  if (chosen !== undefined && chosen !== '') return executable(chosen) ? chosen : undefined
  return (
    onPath('redis-server') ??
    ['/usr/bin/redis-server', '/opt/homebrew/bin/redis-server', '/usr/local/bin/redis-server'].find(
      executable,
    )
  )
}

/** Like {@link findChromium}, but a test that needs Chromium gets one clear line when it is missing. */
export function chromiumPath() {
  const path = findChromium()
  if (path === undefined) throw new Error(missingSystemPrograms(['chromium']))
  return path
}

/** Like {@link findRedisServer}, with one clear line when it is missing. */
export function redisServerPath() {
  const path = findRedisServer()
  if (path === undefined) throw new Error(missingSystemPrograms(['redis-server']))
  return path
}

/** One line naming what to install, on Debian/Ubuntu and on macOS, for the programs `missing`. */
export function missingSystemPrograms(missing) {
  const mac = [
    missing.includes('redis-server') ? '`brew install redis`' : undefined,
    missing.includes('chromium')
      ? 'Chromium or Google Chrome (CHROMIUM_PATH=/path/to/it when it is not in /Applications)'
      : undefined,
  ].filter(Boolean)
  const chosen = [
    ['CHROMIUM_PATH', 'chromium'],
    ['REDIS_SERVER_PATH', 'redis-server'],
  ]
    .filter(([name, program]) => missing.includes(program) && process.env[name])
    .map(([name]) => ` (${name} names no executable file)`)
    .join('')
  return `the tests need ${missing.join(' and ')}, not found${chosen}: on Debian/Ubuntu \`sudo apt-get install ${missing.join(' ')}\`; on macOS ${mac.join(' and ')}`
}

/** The system programs the tests need that this machine lacks (empty when all are there). */
export function missingForTests() {
  const missing = []
  if (findRedisServer() === undefined) missing.push('redis-server')
  if (findChromium() === undefined) missing.push('chromium')
  return missing
}
