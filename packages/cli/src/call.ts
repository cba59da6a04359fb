import type { Io } from './io.js'
import { CliError } from './io.js'

/** Runs `callproof call`. */
export function callCommand(_argv: string[], _io: Io): Promise<number> {
  return Promise.reject(new CliError('not implemented yet'))
}
