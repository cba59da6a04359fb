import { defineProject } from 'vitest/config'
import { sourceConditions } from '../../vitest.shared.js'

export default defineProject({
  ...sourceConditions,
  test: { name: '@callproof/example-quickstart', include: ['test/**/*.test.ts'] },
})
