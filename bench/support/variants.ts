/** The variants of `npm run bench`, in the order the table prints them. */
export const VARIANTS = ['none', 'bearer', 'memory', 'redis', 'nonce'] as const

/** One variant's short name. */
export type VariantName = (typeof VARIANTS)[number]

/** The table's label of each variant. */
export const LABELS: Record<VariantName, string> = {
  none: '(a) no authentication',
  bearer: '(b) bearer JWT (jose)',
  memory: '(c) callproof, memory',
  redis: '(d) callproof, Redis',
  nonce: '(e) callproof, nonces',
}
