/**
 * Time, as every check of `@callproof/core` reads it.
 *
 * @module
 */

/**
 * Milliseconds since the epoch (like `Date.now`). Injected so that tests and replays of
 * recorded traffic can fix the time; JWT claims are seconds.
 *
 * @example
 * ```ts
 * const clock: Clock = () => Date.parse('2026-01-01T00:00:00Z')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7519#section-2
 */
export type Clock = () => number
