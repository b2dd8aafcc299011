// Live sources that go quiet without failing: an ffmpeg stopped with SIGSTOP, a camera whose
// encoder hangs while its connection stays up. After `stall_timeout` without a frame, the stream
// closes such a source with a StallError, and it is restarted as any failed source is.
import { performance } from 'node:perf_hooks';
import { SourceError } from './errors.js';

export class StallError extends SourceError {
  constructor(
    readonly silentMs: number,
    readonly timeoutMs: number,
  ) {
    super(`no frame for ${seconds(silentMs)} (stall_timeout ${seconds(timeoutMs)})`);
    this.name = 'StallError';
  }
}

/** What the watch reads of a live source: a count its frames increment (the only per-frame cost). */
export interface Progress {
  readonly frames: number;
}

interface Seen {
  frames: number;
  /** Ticks since the count was last seen to move (or the watch began). */
  quiet: number;
  /** When it was last seen to move, on the monotonic clock: for the silence reported. */
  since: number;
}

/**
 * One coarse interval timer per stream for all its live sources, armed only while one is
 * watched. Every tick (a quarter of the timeout) compares each source's frame count with the
 * last tick's; a count that has not moved for ticks adding up to the timeout is a stall. Ticks
 * are counted rather than clock time compared, so a timer firing a little early cannot cost a
 * tick. A stall is declared between the timeout and 1.25 × the timeout after the last frame.
 */
export class StallWatch<T extends Progress> {
  #timer: NodeJS.Timeout | undefined;
  #tickMs = 0;
  #lastTick = 0;
  #watched = new Map<T, Seen>();

  constructor(
    /** Read at each use: a stream's settings can be replaced while it runs. Undefined: never. */
    private readonly timeoutMs: () => number | undefined,
    private readonly onStall: (target: T, silentMs: number, timeoutMs: number) => void,
  ) {}

  /** Whether the interval timer exists (tests, debug). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /** Starts watching a source that just went live. */
  watch(t: T): void {
    const timeout = this.timeoutMs();
    if (timeout === undefined || !(timeout > 0)) return;
    const now = performance.now();
    this.#watched.set(t, { frames: t.frames, quiet: 0, since: now });
    if (this.#timer) return;
    this.#tickMs = Math.max(10, Math.floor(timeout / 4));
    this.#lastTick = now;
    this.#timer = setInterval(() => this.#check(), this.#tickMs);
  }

  unwatch(t: T): void {
    if (this.#watched.delete(t) && this.#watched.size === 0) this.#disarm();
  }

  close(): void {
    this.#watched.clear();
    this.#disarm();
  }

  #disarm(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    const now = performance.now();
    // A tick this late means the event loop itself was blocked: frames may be waiting unread in
    // the sockets, so silence measured across the block says nothing about the sources.
    const blocked = now - this.#lastTick > 2 * this.#tickMs;
    this.#lastTick = now;
    const timeout = this.timeoutMs();
    for (const [t, seen] of [...this.#watched]) {
      if (!this.#watched.has(t)) continue; // unwatched by an earlier stall's cascade
      if (t.frames !== seen.frames || blocked) {
        seen.frames = t.frames;
        seen.quiet = 0;
        seen.since = now;
        continue;
      }
      seen.quiet++;
      if (timeout === undefined || seen.quiet * this.#tickMs < timeout) continue;
      this.#watched.delete(t);
      this.onStall(t, Math.round(now - seen.since), timeout);
    }
    if (this.#watched.size === 0) this.#disarm();
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
