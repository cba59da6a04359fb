/**
 * The drive's storage: one drive per subject, in memory, each starting with the same seed files.
 *
 * Keyed by the verified `sub` only: a caller reaches its own drive and no other, whatever path
 * it names, because the path never selects the drive.
 *
 * @module
 */

/** One file as `list_files` reports it. */
export interface FileEntry {
  readonly path: string
  readonly size: number
  readonly sharedWith: readonly string[]
}

/** The files every drive starts with. */
export const SEED_FILES: Readonly<Record<string, string>> = Object.freeze({
  'README.md': '# My drive\n\nFiles in this drive belong to you alone.\n',
  'notes/todo.txt': 'buy milk\nreview the quarterly report\n',
  'reports/q3.csv': 'month,revenue\njuly,120\naugust,135\nseptember,150\n',
})

const MAX_PATH_LENGTH = 256
const MAX_FILES_PER_DRIVE = 1000
const SEGMENT = /^[A-Za-z0-9._~@+ -]+$/

/** A path the drive refuses; tools turn it into a tool error, never a crash. */
export class DrivePathError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DrivePathError'
  }
}

/**
 * Checks a drive path: relative, `/`-separated, no empty, `.` or `..` segments, a conservative
 * character set, at most 256 characters. Returns the path unchanged when it is valid.
 */
export function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path === '')
    throw new DrivePathError('path must be a non-empty string')
  if (path.length > MAX_PATH_LENGTH)
    throw new DrivePathError(`path is longer than ${MAX_PATH_LENGTH} characters`)
  if (path.startsWith('/')) throw new DrivePathError('path must be relative (no leading /)')
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new DrivePathError(`path ${JSON.stringify(path)} has an empty, "." or ".." segment`)
    }
    if (!SEGMENT.test(segment)) {
      throw new DrivePathError(
        `path ${JSON.stringify(path)} has characters outside [A-Za-z0-9._~@+ -]`,
      )
    }
  }
  return path
}

interface StoredFile {
  content: string
  sharedWith: string[]
}

/**
 * All drives of one server instance.
 *
 * @example
 * ```ts
 * const drives = new Drives()
 * drives.write('alice', 'notes/a.txt', 'hello')
 * drives.list('bob') // bob's seeds only
 * ```
 */
export class Drives {
  readonly #drives = new Map<string, Map<string, StoredFile>>()
  readonly #seed: boolean

  constructor(options: { seed?: boolean } = {}) {
    this.#seed = options.seed ?? true
  }

  #drive(sub: string): Map<string, StoredFile> {
    let drive = this.#drives.get(sub)
    if (drive === undefined) {
      drive = new Map()
      if (this.#seed) {
        for (const [path, content] of Object.entries(SEED_FILES))
          drive.set(path, { content, sharedWith: [] })
      }
      this.#drives.set(sub, drive)
    }
    return drive
  }

  list(sub: string): FileEntry[] {
    return [...this.#drive(sub)]
      .map(([path, file]) => ({
        path,
        size: Buffer.byteLength(file.content, 'utf8'),
        sharedWith: [...file.sharedWith],
      }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  read(sub: string, path: string): string | undefined {
    return this.#drive(sub).get(checkPath(path))?.content
  }

  write(sub: string, path: string, content: string): number {
    const drive = this.#drive(sub)
    const checked = checkPath(path)
    const existing = drive.get(checked)
    if (existing === undefined && drive.size >= MAX_FILES_PER_DRIVE) {
      throw new DrivePathError(`a drive holds at most ${MAX_FILES_PER_DRIVE} files`)
    }
    drive.set(checked, { content, sharedWith: existing?.sharedWith ?? [] })
    return Buffer.byteLength(content, 'utf8')
  }

  delete(sub: string, path: string): boolean {
    return this.#drive(sub).delete(checkPath(path))
  }

  share(sub: string, path: string, withUser: string): FileEntry | undefined {
    const file = this.#drive(sub).get(checkPath(path))
    if (file === undefined) return undefined
    if (!file.sharedWith.includes(withUser)) file.sharedWith.push(withUser)
    return { path, size: Buffer.byteLength(file.content, 'utf8'), sharedWith: [...file.sharedWith] }
  }
}
