/**
 * A real `redis-server` child process for tests: a free loopback port, no persistence unless asked
 * (then an append-only file in a temporary directory, fsynced on every write), stopped after.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisServerPath } from '../../../../scripts/system.mjs'

/** A running redis-server that a test controls. */
export interface TestRedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Sends one command over a fresh connection and returns the raw RESP reply. */
  command(...args: string[]): Promise<string>
  /** SIGKILL: the server vanishes mid-flight, as in a crash. Resolves once the process is gone. */
  kill(): Promise<void>
  /** Starts the server again on the same port (and, with persistence, the same data directory). */
  start(): Promise<void>
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>
}

/** Options of {@link startRedisServer}. */
export interface StartRedisServerOptions {
  /** Keep an append-only file (fsync always) so that data survives a kill and restart. */
  persistent?: boolean
}

/** Starts redis-server (found by scripts/system.mjs) on a free loopback port and waits until it answers PING. */
export async function startRedisServer(
  options: StartRedisServerOptions = {},
): Promise<TestRedisServer> {
  let port = 0
  const dir = await mkdtemp(join(tmpdir(), 'callproof-redis-'))
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let log = ''

  const args = () => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    '--maxmemory-policy',
    'noeviction',
    ...(options.persistent === true
      ? ['--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no']),
  ]

  async function start(): Promise<void> {
    log = ''
    const proc = spawn(redisServerPath(), args(), { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    proc.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()))
    proc.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()))
    exited = new Promise((resolve) => proc.once('exit', () => resolve()))
    const deadline = Date.now() + 10_000
    for (;;) {
      if (proc.exitCode !== null) {
        throw new Error(`redis-server exited with ${proc.exitCode}: ${log}`)
      }
      try {
        if ((await sendCommand(port, ['PING'])).startsWith('+PONG')) break
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING: ${log}`)
      await new Promise((r) => setTimeout(r, 25))
    }
    // The answer may come from another test's redis-server that took the port first.
    if (!(await sendCommand(port, ['CONFIG', 'GET', 'dir'])).includes(dir)) {
      throw new Error(`another server answers on 127.0.0.1:${port}`)
    }
  }

  async function kill(): Promise<void> {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
    child = undefined
  }

  // redis-server cannot listen on a port of its choosing and say which (port 0 turns TCP off), so
  // the port is probed first; another process (a parallel test worker) may take it before
  // redis-server binds it. The first start then moves to another port.
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    try {
      await start()
      break
    } catch (error) {
      await kill()
      const taken = /Address already in use|another server answers/.test(String(error))
      if (!taken || attempt === 3) throw error
    }
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    command: (...cmd) => sendCommand(port, cmd),
    kill,
    start,
    async stop() {
      await kill()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** A port that was free a moment ago (listen on 0, read it, close). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

/** One RESP command over its own connection; resolves with the first reply line(s) received. */
function sendCommand(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`redis ${args[0]} timed out`))
    }, 5000)
    socket.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.endsWith('\r\n')) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    socket.write(
      `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''),
    )
  })
}
