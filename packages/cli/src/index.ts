/**
 * `@callproof/cli`: the `callproof` command (`demo`, `dev`, `call`, `bridge`, `scan`, `inspect`, `audit`) and the
 * functions behind it, for programs and tests that want the demo or the inspector in-process.
 *
 * @packageDocumentation
 */
export { main, VERSION } from './main.js'
export { processIo, memoryIo, CliError, UsageError } from './io.js'
export type { Io, ExitCode } from './io.js'
export { safeText, safeJson, SAFE_TEXT_MAX } from './terminal.js'
export type { SafeTextOptions } from './terminal.js'
export { runDemo, formatDemoTable } from './demo.js'
export type { DemoMode, DemoOptions, DemoReport, DemoRow } from './demo.js'
export type { AttackId, AttackSpec, StepKey, StepLesson } from './story.js'
export type { Observation, WireExchange, WireRequest } from './wire.js'
export { inspectJwt, formatInspection } from './inspect.js'
export type { Inspection, InspectOptions, InspectCheck, ExplainedField } from './inspect.js'
export { readAudit, formatAudit } from './audit.js'
export type { AuditLine, AuditFilter } from './audit.js'
export { startStack, startAuthServer } from './stack.js'
export type {
  Stack,
  StackOptions,
  AuthServer,
  AuthServerOptions,
  DriveKind,
  DevAuthServerModule,
} from './stack.js'
export type { CallDependencies } from './call.js'
export type { DevInfo, DevAuthInfo } from './dev.js'
export { runScan, SCAN_CHECKS } from './scan/checks.js'
export type {
  ScanCheck,
  ScanCheckId,
  ScanOptions,
  ScanProbe,
  ScanReport,
  ScanStatus,
} from './scan/checks.js'
export { loginCaller, tokenCaller } from './scan/callers.js'
export type { ScanCaller, LoginCallerOptions } from './scan/callers.js'
export { formatScanReport } from './scan/format.js'
export type { ScanDependencies } from './scan/command.js'
