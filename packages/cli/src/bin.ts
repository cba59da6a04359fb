#!/usr/bin/env node
/**
 * The `callproof` executable. Everything lives in `main.ts`; this file only connects it to the
 * process: arguments in, exit code out.
 */
import { processIo } from './io.js'
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2), processIo())
