import type { Io } from './io.js'
import { CliError } from './io.js'

/** Runs `callproof dev`. */
export function devCommand(_argv: string[], _io: Io): Promise<number> {
  return Promise.reject(new CliError('not implemented yet'))
}
