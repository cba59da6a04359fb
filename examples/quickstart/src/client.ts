/**
 * The smallest callproof client: `connect()` does the rest (key, sign-in, a proof per call).
 */
import { connect } from '@callproof/client'
import type { Interaction } from '@callproof/client'

/** Adds a note as whoever `interaction` signs in, and returns the server's answer. */
export async function addNote(url: string, interaction: Interaction, text: string) {
  const client = await connect(url, { interaction, development: true })
  const result = await client.callTool({ name: 'add_note', arguments: { text } })
  await client.close()
  return (result.content as { type: string; text?: string }[])[0]?.text ?? ''
}
