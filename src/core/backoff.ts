// Exponential backoff with full jitter: delay n is uniform in [0, min(max, base * 2^n)].
// The attempt counter resets once a source has run for `stableAfter` ms.

export interface BackoffSettings {
  base: number;
  max: number;
  stableAfter: number;
}

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly s: BackoffSettings,
    private readonly random: () => number = Math.random,
  ) {}

  /** The cap for the next delay: what the jitter draws below. */
  get ceiling(): number {
    return Math.min(this.s.max, this.s.base * 2 ** this.attempt);
  }

  get attempts(): number {
    return this.attempt;
  }

  next(): number {
    const delay = Math.floor(this.random() * this.ceiling);
    if (this.s.base * 2 ** this.attempt < this.s.max) this.attempt++;
    return delay;
  }

  /** Called when a source stops: forget past failures if it had run long enough. */
  ranFor(ms: number): void {
    if (ms >= this.s.stableAfter) this.attempt = 0;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** The pending retries of a stream's sources, one timer per source index. */
export class RetryTimers {
  #timers = new Map<number, NodeJS.Timeout>();

  /** Runs `retry` after `delay` ms (once; the timer is forgotten before it runs). */
  set(index: number, delay: number, retry: () => void): void {
    clearTimeout(this.#timers.get(index));
    this.#timers.set(
      index,
      setTimeout(() => {
        this.#timers.delete(index);
        retry();
      }, delay),
    );
  }

  has(index: number): boolean {
    return this.#timers.has(index);
  }

  /** The indices with a retry pending. */
  indices(): number[] {
    return [...this.#timers.keys()];
  }

  cancel(index: number): void {
    clearTimeout(this.#timers.get(index));
    this.#timers.delete(index);
  }

  cancelAll(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
