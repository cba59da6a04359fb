/**
 * `callproof demo --step`: the story paced for a class. Before each step it explains what the
 * caller (or the attacker) does, why it works on the insecure baseline, and what callproof
 * checks; on a terminal it then waits for Enter.
 *
 * It never waits where nobody can press Enter: when stdin is not a terminal (a pipe, CI, a
 * script) or with `--json` (a program reads stdout), the explanations are printed and the story
 * runs on; stdin ending (Ctrl-D) stops the waiting too.
 */
import { createInterface } from 'node:readline'
import { style, wrap } from './io.js'
import type { Io } from './io.js'
import { LESSON } from './story.js'
import type { StepKey } from './story.js'

/** The input `--step` reads Enter from (`process.stdin`, or a stream in tests). */
export type StepInput = NodeJS.ReadableStream & { readonly isTTY?: boolean }

/** What {@link stepper} returns. */
export interface Stepper {
  /** Whether it waits for Enter (stdin is a terminal and the output is not JSON). */
  readonly waits: boolean
  /** Explains the step, then waits for Enter when {@link waits}. */
  pause(step: { readonly step: number; readonly key: StepKey }): Promise<void>
  /** Stops reading stdin. */
  close(): void
}

const WIDTH = 96

/**
 * A stepper that explains with `say` and reads Enter from `input`.
 *
 * @example
 * ```ts
 * const stepper = createStepper(io, io.out, process.stdin, { json: false })
 * await runDemo({ pause: (s) => stepper.pause(s) })
 * stepper.close()
 * ```
 */
export function createStepper(
  io: Pick<Io, 'color'>,
  say: (line: string) => void,
  input: StepInput,
  options: { readonly json: boolean },
): Stepper {
  const waits = input.isTTY === true && !options.json
  const total = Object.keys(LESSON).length
  let waiting: (() => void) | undefined
  let ended = !waits
  const lines = waits ? createInterface({ input, terminal: false }) : undefined
  // An Enter pressed while a step runs is dropped: it must not skip the next pause.
  lines?.on('line', () => {
    const resume = waiting
    waiting = undefined
    resume?.()
  })
  lines?.on('close', () => {
    ended = true
    waiting?.()
    waiting = undefined
  })
  if (!waits) {
    say(
      style(
        io,
        'dim',
        options.json
          ? '--step with --json: each step is explained on stderr, without waiting for Enter'
          : '--step: stdin is not a terminal, so each step is explained without waiting for Enter',
      ),
    )
  }
  const paragraph = (label: string, text: string, colour: 'cyan' | 'yellow' | 'green') => {
    const [first = '', ...rest] = wrap(text, WIDTH - 20)
    say(`     ${style(io, colour, label.padEnd(15))}${first}`)
    for (const line of rest) say(`     ${' '.repeat(15)}${line}`)
  }
  return {
    waits,
    async pause({ step, key }) {
      const lesson = LESSON[key]
      say('')
      say(style(io, 'bold', `  ── step ${step} of ${total} ${'─'.repeat(Math.max(0, WIDTH - 20))}`))
      paragraph('what happens', lesson.does, 'cyan')
      paragraph('the baseline', lesson.baseline, 'yellow')
      paragraph('callproof', lesson.callproof, 'green')
      if (ended) return
      say(style(io, 'dim', `     press Enter to run step ${step} (Ctrl-C to stop)`))
      await new Promise<void>((resolve) => {
        waiting = resolve
      })
    },
    close() {
      lines?.close()
    },
  }
}
