/**
 * `npm start -w @callproof/example-quickstart`: runs the quickstart and prints what happened.
 */
import { runQuickstart } from './index.js'

for (const answer of await runQuickstart()) console.log(answer)
