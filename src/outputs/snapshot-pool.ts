// Snapshots for everyone at bounded cost. Each decode is an ffmpeg (~40 MB): 100 requests at once
// used to start ~85 of them (3.5 GB). Here requests for the same stream and size share one decode
// while it runs, and its JPEG answers them for `cacheMs` after; at most `maxDecoders` decodes are
// admitted at once across all streams, and a request that needs one more is refused
// (SnapshotsBusy). Of the admitted ones, at most one decoder per core but one runs at a time.
import { availableParallelism } from 'node:os';
import type { Stream } from '../core/stream.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';
import type { StopGrace } from '../process/child.js';
import { captureKeyframe, keyframeToJpeg, SnapshotAborted } from './snapshot.js';

/**
 * Decoders that run at once: one per core but one, at least one. Measured on 2 cores (docs/
 * benchmarks.md, snapshots): with 2 or 4 decoders running, even at SCHED_IDLE, GET /api sent at
 * the start of a 150-request burst waited 135–350 ms; with 1, at most 80 ms. A decode is CPU
 * work only, so more of them at once only share the cores (each takes ~130 ms of CPU for 1080p).
 */
export const DEFAULT_RUNNING_DECODERS = Math.max(1, availableParallelism() - 1);

export interface SnapshotPoolOptions {
  ffmpegBin: string;
  grace: StopGrace;
  /** api.max_snapshots: decodes admitted at once (running, or waiting for a decoder to run on). */
  maxDecoders: number;
  /** Decoders (ffmpeg) running at once; default DEFAULT_RUNNING_DECODERS, never above maxDecoders. */
  runningDecoders?: number;
  /** api.snapshot_cache (ms); 0: a JPEG is shared only by the requests that waited for it. */
  cacheMs: number;
  /** How long an idle stream may take to give a keyframe. */
  timeoutMs: number;
}

/** Every decoder is busy and none of them makes this picture: try again shortly. */
export class SnapshotsBusy extends Error {
  constructor(readonly max: number) {
    super(`all ${max} snapshot decoders are busy (api.max_snapshots: ${max}); try again in a second`);
  }
}

const busyLog = new LogThrottle('snapshot refused: api.max_snapshots decoders busy');

/** Answers written per event-loop turn when many wait at once (see SnapshotPool.turn). */
const ANSWERS_PER_TURN = 16;

/** A decode and the requests waiting for it: the last of them to go away stops it. */
interface Running {
  jpeg: Promise<Buffer>;
  abort: AbortController;
  waiters: number;
}

interface Cached {
  jpeg: Buffer;
  at: number;
}

/**
 * Holds no resource of its own: each decode owns its ffmpeg and ends by itself (keyframe and
 * decoder deadlines), so there is nothing to close.
 */
export class SnapshotPool {
  #running = new Map<string, Running>();
  #cache = new Map<string, Cached>();
  #waiting: (() => void)[] = [];
  #draining = false;
  #busy: SnapshotsBusy | undefined;

  constructor(private readonly opts: SnapshotPoolOptions) {}

  /** Decodes admitted now: running, or waiting for their keyframe or for a decoder to run on. */
  get decoders(): number {
    return this.#running.size;
  }

  /**
   * A JPEG of `stream`'s latest keyframe at this size; rejects with SnapshotsBusy at the cap, and
   * with SnapshotAborted when `signal` (the request's end) fires first. A decode whose every
   * request ended is stopped: its ffmpeg is closed, an idle stream started for it goes back to idle.
   */
  jpeg(stream: Stream, width?: number, height?: number, signal?: AbortSignal): Promise<Buffer> {
    const key = `${stream.name}\0${width ?? ''}\0${height ?? ''}`;
    const now = performance.now();
    this.#prune(now);
    const cached = this.#cache.get(key);
    if (cached) return Promise.resolve(cached.jpeg);
    const running = this.#running.get(key);
    if (running) return this.#wait(running, signal);
    if (this.#running.size >= this.opts.maxDecoders) {
      countRefusal('snapshot_decoders');
      busyLog.hit({ max: this.opts.maxDecoders, stream: stream.name });
      // One error for every refusal: a burst refuses 100+ at once, each capturing a stack otherwise.
      this.#busy ??= new SnapshotsBusy(this.opts.maxDecoders);
      return Promise.reject(this.#busy);
    }
    const { ffmpegBin, grace, timeoutMs } = this.opts;
    const abort = new AbortController();
    const decode = (async () => {
      const key = await captureKeyframe(stream, timeoutMs, abort.signal);
      const release = await this.#decoderSlot(abort.signal);
      try {
        // Spawning is synchronous (~3–10 ms each): each decoder gets its own event-loop turn.
        await this.#spawnTurn();
        return await keyframeToJpeg(key, { ffmpegBin, grace, width, height, timeoutMs }, abort.signal);
      } finally {
        release();
      }
    })();
    const entry: Running = { jpeg: decode, abort, waiters: 0 };
    this.#running.set(key, entry);
    decode.then(
      (jpeg) => {
        this.#running.delete(key);
        if (this.opts.cacheMs > 0) this.#cache.set(key, { jpeg, at: performance.now() });
      },
      () => this.#running.delete(key),
    );
    return this.#wait(entry, signal);
  }

  /** The decode's JPEG for one more request, released when that request ends first. */
  #wait(entry: Running, signal: AbortSignal | undefined): Promise<Buffer> {
    if (!signal) {
      // A caller that cannot go away (none today but tests) keeps the decode to its end.
      entry.waiters++;
      return entry.jpeg;
    }
    if (signal.aborted) return Promise.reject(new SnapshotAborted());
    entry.waiters++;
    return new Promise<Buffer>((resolve, reject) => {
      const leave = (): void => {
        entry.waiters--;
        if (entry.waiters === 0) entry.abort.abort();
        reject(new SnapshotAborted());
      };
      signal.addEventListener('abort', leave, { once: true });
      entry.jpeg.then(
        (jpeg) => {
          signal.removeEventListener('abort', leave);
          resolve(jpeg);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', leave);
          reject(e);
        },
      );
    });
  }

  /**
   * Resolves on a later event-loop turn, ANSWERS_PER_TURN callers per turn. 150 requests that
   * share one JPEG resume together, and writing 150 answers at once held the event loop ~90 ms;
   * in turns, other requests (Home Assistant's GET /api watchdog) are served between them.
   */
  turn(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      if (!this.#draining) {
        this.#draining = true;
        setImmediate(() => this.#drain());
      }
    });
  }

  #spawns: Promise<void> = Promise.resolve();
  #runningDecoders = 0;
  #slotQueue: (() => void)[] = [];

  /** Decoders running now (at most runningDecoders; the other admitted decodes wait for one). */
  get runningDecoders(): number {
    return this.#runningDecoders;
  }

  /** Waits (FIFO) for a decoder to run on; the release must be called once. Rejects on abort. */
  #decoderSlot(signal: AbortSignal): Promise<() => void> {
    const limit = Math.max(1, Math.min(this.opts.runningDecoders ?? DEFAULT_RUNNING_DECODERS, this.opts.maxDecoders));
    const release = (): void => {
      this.#runningDecoders--;
      this.#slotQueue.shift()?.();
    };
    if (signal.aborted) return Promise.reject(new SnapshotAborted());
    if (this.#runningDecoders < limit) {
      this.#runningDecoders++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const go = (): void => {
        signal.removeEventListener('abort', leave);
        this.#runningDecoders++;
        resolve(release);
      };
      const leave = (): void => {
        const i = this.#slotQueue.indexOf(go);
        if (i >= 0) this.#slotQueue.splice(i, 1);
        reject(new SnapshotAborted());
      };
      signal.addEventListener('abort', leave, { once: true });
      this.#slotQueue.push(go);
    });
  }

  /** Resolves one caller per event-loop turn. */
  #spawnTurn(): Promise<void> {
    const mine = this.#spawns.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.#spawns = mine;
    return mine;
  }

  #drain(): void {
    for (const resolve of this.#waiting.splice(0, ANSWERS_PER_TURN)) resolve();
    if (this.#waiting.length > 0) setImmediate(() => this.#drain());
    else this.#draining = false;
  }

  #prune(now: number): void {
    for (const [k, c] of this.#cache) if (now - c.at >= this.opts.cacheMs) this.#cache.delete(k);
  }
}
