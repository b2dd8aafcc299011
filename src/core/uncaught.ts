// The last resort for errors nothing caught (process 'uncaughtException' / 'unhandledRejection').
// Every one is a bug, logged with its stack and counted (camrelay_uncaught_errors_total{kind});
// the process stays up, because one viewer's or one packet's failure must not end every other
// viewer's stream. It exits (non-zero, for the supervisor to restart it) only when the state can
// no longer be trusted: an exception thrown while closing, i.e. from a `close`/`exit` path that
// releases resources (what it failed to release is unknown, and leaks would grow unseen), or more
// than MAX_IN_WINDOW errors within WINDOW_MS (something is failing in a loop).

export type UncaughtKind = 'exception' | 'rejection';
/** What the counter reports: the process-level kinds and listeners that threw inside an emit (typed-emitter.ts). */
export type UncaughtCountKind = UncaughtKind | 'listener';

/** More than this many uncaught errors within WINDOW_MS: exit. */
export const MAX_IN_WINDOW = 20;
export const WINDOW_MS = 60_000;

const counts: Record<UncaughtCountKind, number> = { exception: 0, rejection: 0, listener: 0 };

export function uncaughtCounts(): Readonly<Record<UncaughtCountKind, number>> {
  return counts;
}

/**
 * An event listener threw and its emitter caught it (emitIsolated). Counted with the uncaught
 * errors, since each is a bug too, but outside UncaughtPolicy: the emitter contained it, so the
 * process state is still known and it is no reason to exit.
 */
export function countListenerError(): void {
  counts.listener++;
}

/** Whether an error's stack shows it was thrown from a close path (see the header). */
export function fromClosePath(e: unknown): boolean {
  const stack = e instanceof Error ? (e.stack ?? '') : '';
  // Frames only, not the message: "at X.close (…)", "at X.onClose (…)", "at X.#closeAll (…)", "at emitCloseNT".
  return stack
    .split('\n')
    .slice(1)
    .some((line) => /^\s*at (?:\S+\.)?(?:#?(?:close|onClose|closeAll)|emitCloseNT)\b/.test(line));
}

export type Verdict = { exit: false } | { exit: true; why: string };

/** Counts one uncaught error and says whether the process must exit. */
export class UncaughtPolicy {
  #times: number[] = [];

  record(kind: UncaughtKind, e: unknown, now = Date.now()): Verdict {
    counts[kind]++;
    this.#times.push(now);
    while (this.#times.length > 0 && this.#times[0]! <= now - WINDOW_MS) this.#times.shift();
    if (kind === 'exception' && fromClosePath(e)) return { exit: true, why: 'an exception was thrown while closing a resource: what it held is unknown' };
    if (this.#times.length > MAX_IN_WINDOW) return { exit: true, why: `more than ${MAX_IN_WINDOW} uncaught errors within ${WINDOW_MS / 1000} s` };
    return { exit: false };
  }
}
