// The states of a Stream and the transitions between them, as one table: every change of state
// goes through checkTransition, so a change the design does not foresee shows up at once.
import type { Logger } from './log.js';

export type StreamState = 'idle' | 'starting' | 'live' | 'backoff' | 'stopping';

/**
 * From each state, the states it may go to (docs/architecture.md: idle → starting → live →
 * (backoff → starting)* → stopping → idle), with the side roads the code takes:
 * - starting → idle: the last consumer left a stream that had nothing running yet (no source
 *   started, or one waiting for a publisher); or a publisher left while nobody watched.
 * - live → starting / idle: an external publisher left (the stream waits for the next one while
 *   watched, else rests).
 * - backoff → stopping / idle: the last consumer left during the retry delay (stopping while an
 *   old source is still exiting).
 * - stopping → starting: a publisher arrived while the old source was still exiting.
 * - stopping → backoff: the failed primary is gone and someone still watches.
 * close() leaves whatever state for idle without this table: a closed stream has no transitions.
 */
export const TRANSITIONS: Readonly<Record<StreamState, readonly StreamState[]>> = {
  idle: ['starting'],
  starting: ['live', 'stopping', 'idle'],
  live: ['stopping', 'starting', 'idle'],
  backoff: ['starting', 'stopping', 'idle'],
  stopping: ['idle', 'backoff', 'starting'],
};

export function isAllowed(from: StreamState, to: StreamState): boolean {
  return TRANSITIONS[from].includes(to);
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly stream: string,
    readonly from: StreamState,
    readonly to: StreamState,
  ) {
    super(`stream "${stream}": illegal state transition ${from} → ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

/**
 * Whether an illegal transition throws: when NODE_TEST_CONTEXT is set, i.e. under `node --test`,
 * which sets it in the process of every test file; the camrelay processes the integration tests
 * spawn inherit it (test/helpers/camrelay-process.ts passes process.env on), so both the
 * in-process and the spawned streams run strict. Everywhere else the change is logged as an
 * error and made anyway: a running server keeps its viewers rather than stop on a bookkeeping bug.
 */
export function strictTransitions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NODE_TEST_CONTEXT !== undefined && env.NODE_TEST_CONTEXT !== '';
}

/** Throws (strict) or logs an IllegalTransitionError when `from → to` is not in TRANSITIONS. */
export function checkTransition(stream: string, from: StreamState, to: StreamState, log: Logger, strict = strictTransitions()): void {
  if (isAllowed(from, to)) return;
  const err = new IllegalTransitionError(stream, from, to);
  if (strict) throw err;
  log.error({ from, to, stack: err.stack }, err.message);
}
