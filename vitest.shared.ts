/**
 * Tests run against the TypeScript sources, not the built `dist/`: every workspace package exports
 * a `@callproof/source` condition that points at `src/`, and tests resolve it.
 */
export const sourceConditions = {
  resolve: { conditions: ['@callproof/source', 'module', 'node', 'default'] },
  ssr: { resolve: { conditions: ['@callproof/source', 'module', 'node', 'default'] } },
}
