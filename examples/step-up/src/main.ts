/**
 * `npm start -w @callproof/example-step-up`: plays the example and prints each event.
 */
import { runStepUp } from './index.js'

await runStepUp((event) => {
  switch (event.kind) {
    case 'challenge':
      return console.log(`  ← ${event.status} ${event.error}`)
    case 'interaction':
      return console.log(`  ↻ the agent asks alice: ${event.reason}`)
    case 'result':
      return console.log(`${event.isError ? '✗' : '✓'} ${event.tool}: ${event.text}`)
    case 'refused':
      return console.log(`✗ ${event.tool} refused: ${event.message}`)
  }
})
