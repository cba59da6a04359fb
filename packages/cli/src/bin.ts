#!/usr/bin/env node
/**
 * The `callproof` executable. Everything lives in `main.ts`; this file only connects it to the
 * process: arguments in, exit code out.
 */
import { processIo } from './io.js'
import { main } from './main.js'

const code = await main(process.argv.slice(2), processIo())
process.exitCode = code
// The command is done: a socket or timer some library forgot must not keep the process alive.
setTimeout(() => process.exit(code), 1500).unref()
