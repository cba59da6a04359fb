/**
 * Where the bridge keeps its key and tokens between launches: one directory per MCP server under
 * the user's configuration directory, so two bridges for two servers (an MCP client launches one
 * per configured server) never write the same file.
 */
import { createHash } from 'node:crypto'
import { homedir } from 'node:os'
import { join } from 'node:path'

/**
 * The user's configuration directory for callproof: `$XDG_CONFIG_HOME/callproof`, `%APPDATA%`
 * on Windows, else `~/.config/callproof`.
 */
export function configDir(
  env: Readonly<Record<string, string | undefined>>,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  const xdg = env.XDG_CONFIG_HOME
  // The XDG spec: a relative value is invalid and ignored.
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'callproof')
  if (platform === 'win32' && env.APPDATA !== undefined && env.APPDATA !== '') {
    return join(env.APPDATA, 'callproof')
  }
  return join(home, '.config', 'callproof')
}

/**
 * The directory for one server: its host (for a human reading the directory) and a hash of the
 * whole URL (so that two endpoints on one host, or a host name made of odd characters, never
 * share or escape it).
 */
export function serverStateDir(base: string, server: URL): string {
  const host = server.host.replace(/[^a-zA-Z0-9.-]/g, '_').slice(0, 64)
  const hash = createHash('sha256').update(server.href).digest('hex').slice(0, 16)
  return join(base, 'bridge', `${host}-${hash}`)
}
