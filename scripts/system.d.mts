// Types of scripts/system.mjs for the TypeScript tests that import it.
/** The flags every test launches Chromium with. */
export declare const CHROMIUM_ARGS: readonly string[]
/** `CHROMIUM_PATH`, else the first usual location with an executable Chromium or Chrome. */
export declare function findChromium(): string | undefined
/** `REDIS_SERVER_PATH`, else redis-server on PATH, else Debian's and Homebrew's locations. */
export declare function findRedisServer(): string | undefined
/** {@link findChromium}, throwing one line that names what to install when there is none. */
export declare function chromiumPath(): string
/** {@link findRedisServer}, throwing one line that names what to install when there is none. */
export declare function redisServerPath(): string
/** One line naming what to install on Debian/Ubuntu and macOS. */
export declare function missingSystemPrograms(missing: readonly string[]): string
/** The system programs the tests need that this machine lacks. */
export declare function missingForTests(): string[]
