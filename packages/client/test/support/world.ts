// Test support: the real development authorization server (oidc-provider) and the real drive
// example, both on 127.0.0.1 with free ports.
import { createServer } from 'node:net'
import { startDevAuthServer, type StartDevAuthServerOptions } from '@callproof/dev-auth-server'
import { startDrive } from '@callproof/example-drive'

export const DRIVE_SCOPES = ['drive:read', 'drive:write', 'drive:share'] as const

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface World {
  issuer: string
  drive: { url: string; origin: string; resource: string }
  close(): Promise<void>
}

/** Options of a world; `auth` goes to the authorization server (its clients, `jwtBearer`). */
export interface WorldOptions {
  nonce?: boolean
  accessTokenTtl?: number
  auth?: Pick<StartDevAuthServerOptions, 'clients' | 'jwtBearer'>
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  // The drive's port must be in the resource URI the authorization server is started with, before
  // the drive listens: it is probed first, and another process (a parallel test worker) may take
  // it in between. Then the world starts again on another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWorldOn(await freePort(), options)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 3) throw error
    }
  }
}

async function startWorldOn(port: number, options: WorldOptions): Promise<World> {
  const resource = `http://127.0.0.1:${port}/mcp`
  const auth = await startDevAuthServer({
    resources: [{ uri: resource, scopes: [...DRIVE_SCOPES] }],
    logger: { warn: () => {}, info: () => {} },
    ...options.auth,
    ...(options.accessTokenTtl !== undefined && { accessTokenTtl: options.accessTokenTtl }),
  })
  const drive = await startDrive({
    port,
    issuer: auth.issuer,
    ...(options.nonce !== undefined && { nonce: options.nonce }),
  }).catch(async (error: unknown) => {
    await auth.close()
    throw error
  })
  return {
    issuer: auth.issuer,
    drive,
    async close() {
      await drive.close()
      await auth.close()
    },
  }
}
