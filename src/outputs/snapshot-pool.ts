// Snapshots for everyone at bounded cost. One long-lived decoder (snapshot-decoder.ts: an ffmpeg,
// ~20–80 MB) per codec, parameter sets and size turns keyframes into JPEGs. Streams whose keyframes
// carry the same parameter sets (cameras of one model and setting: the usual house) share it, one
// keyframe at a time: sixteen such cameras polled every 10 s cost one process, not a process start
// per request as when each stream needed its own slot under api.max_snapshots. Different parameter
// sets get their own decoder, as a decoder's output size is fixed at its first picture. A decoder
// is kept while the stream-and-size lines using it are: a line is forgotten `keepMs` after its last
// request. A JPEG answers every request for its stream and size while the stream's latest keyframe
// is still the one it was made from (no decode at all within a GOP), and for `cacheMs` after it was
// made whatever the keyframe. Requests that find no such JPEG share one decode. `maxDecoders`
// bounds the decoders alive plus the decodes waiting for a keyframe that have no decoder yet: a new
// one takes the slot of the least recently used idle decoder (closing it), and when every slot is
// busy the request is refused (SnapshotsBusy). Of the decodes, at most one per core but one runs at
// a time.
import { availableParallelism } from 'node:os';
import type { Stream } from '../core/stream.js';
import type { Frame } from '../core/media.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';
import { SourceError } from '../core/errors.js';
import type { StopGrace } from '../process/child.js';
import { captureKeyframe, SnapshotAborted } from './snapshot.js';
import { parameterSetsOf, snapshotCodec, SnapshotDecoder } from './snapshot-decoder.js';

/**
 * Decodes that run at once: one per core but one, at least one. Measured on 2 cores (docs/
 * benchmarks.md, snapshots): with 2 or 4 decoders running, even at SCHED_IDLE, GET /api sent at
 * the start of a 150-request burst waited 135–350 ms; with 1, at most 80 ms.
 */
export const DEFAULT_RUNNING_DECODERS = Math.max(1, availableParallelism() - 1);

/**
 * How long a decoder is kept without a request for its stream and size: longer than Home
 * Assistant's 10 s picture refresh, so a dashboard's polling keeps it; short enough that a
 * dashboard closed gives its memory back soon.
 */
export const SNAPSHOT_DECODER_KEEP_MS = 15_000;

export interface SnapshotPoolOptions {
  ffmpegBin: string;
  grace: StopGrace;
  /** api.max_snapshots: decoders alive plus decodes waiting for a keyframe, all streams and sizes. */
  maxDecoders: number;
  /** Decodes running at once; default DEFAULT_RUNNING_DECODERS, never above maxDecoders. */
  runningDecoders?: number;
  /** api.snapshot_cache (ms): a JPEG answers its stream and size this long even after a new keyframe; 0: only while its keyframe is the latest. */
  cacheMs: number;
  /** How long an idle stream may take to give a keyframe. */
  timeoutMs: number;
  /** A decoder without a request this long is stopped (default SNAPSHOT_DECODER_KEEP_MS). */
  keepMs?: number;
}

/** Every decoder is busy and none of them makes this picture: try again shortly. */
export class SnapshotsBusy extends Error {
  constructor(readonly max: number) {
    super(`all ${max} snapshot decoders are busy (api.max_snapshots: ${max}); try again in a second`);
  }
}

/** Lines share a decoder when their keyframes need the same input format, parameter sets and output size. */
function sharedKey(codec: string, parameterSets: Buffer, width: number | undefined, height: number | undefined): string {
  return `${codec}\0${width ?? ''}\0${height ?? ''}\0${parameterSets.toString('base64')}`;
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

/** One decoder process and the lines that use it, one keyframe at a time. */
interface Shared {
  key: string;
  dec: SnapshotDecoder;
  lines: Set<Line>;
  /** Resolves when the decode before the last one queued is done (a FIFO lock). */
  tail: Promise<void>;
  /** Decodes holding or waiting for the lock. */
  queued: number;
}

/** One stream and size: the decoder it uses, the decode under way and the last JPEG. */
interface Line {
  key: string;
  stream: Stream;
  width?: number;
  height?: number;
  decoder?: Shared;
  /** Why the line was forgotten while a decode for it ran: that decode answers this. */
  gone?: Error;
  /** While a decode waits with no decoder: the decoder it will use, when its stream's keyframe told. */
  pendingKey?: string;
  running?: Running;
  /** The keyframe is held weakly: the GOP cache decides how long it lives. */
  last?: { frame: WeakRef<Frame>; jpeg: Buffer; at: number };
  usedAt: number;
  keep?: NodeJS.Timeout;
}

/**
 * Owns the decoders (through its lines). Each is closed after its quiet period, when its stream
 * closes (removed, or camrelay stopping: the registry closes every stream), when its slot is
 * taken, or by close().
 */
export class SnapshotPool {
  #lines = new Map<string, Line>();
  #shared = new Map<string, Shared>();
  /** The 'close' listener on each stream that has lines. */
  #streams = new Map<Stream, () => void>();
  #waiting: (() => void)[] = [];
  #draining = false;
  #busy: SnapshotsBusy | undefined;
  #closed = false;

  constructor(private readonly opts: SnapshotPoolOptions) {}

  /**
   * Slots taken now: decoders alive, and decodes under way that will need one not alive (those
   * that will share one count once). At most maxDecoders, bar a burst's estimate: the decoders
   * alive never pass it (#decodeOn checks again before it starts one).
   */
  get decoders(): number {
    const pending = new Set<string | Line>();
    for (const l of this.#lines.values()) if (l.running && !l.decoder && !(l.pendingKey && this.#shared.has(l.pendingKey))) pending.add(l.pendingKey ?? l);
    return this.#shared.size + pending.size;
  }

  /** Decoders (ffmpeg) alive now. */
  get alive(): number {
    return this.#shared.size;
  }

  /**
   * A JPEG of `stream`'s latest keyframe at this size; rejects with SnapshotsBusy at the cap, and
   * with SnapshotAborted when `signal` (the request's end) fires first. A decode whose every
   * request ended is stopped: an idle stream started for it goes back to idle (its decoder stays).
   */
  jpeg(stream: Stream, width?: number, height?: number, signal?: AbortSignal): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new SourceError('snapshots stopped'));
    const key = `${stream.name}\0${width ?? ''}\0${height ?? ''}`;
    const now = performance.now();
    let line = this.#lines.get(key);
    if (line && line.stream !== stream) {
      // A stream of the same name set again: the old one's line goes with it.
      this.#drop(line, new SourceError(`stream "${stream.name}" was replaced`));
      line = undefined;
    }
    if (line) {
      line.usedAt = now;
      this.#keep(line);
      const fresh = this.#fresh(line, now);
      if (fresh) return Promise.resolve(fresh);
      if (line.running) return this.#wait(line.running, signal);
    }
    const pendingKey = line?.decoder ? undefined : this.#keyFor(stream, width, height);
    if (!line || !this.#holdsSlot(line)) {
      // A decoder alive or about to start for the same parameter sets takes no slot more.
      const shares = pendingKey !== undefined && (this.#shared.has(pendingKey) || [...this.#lines.values()].some((l) => l.running && l.pendingKey === pendingKey));
      if (!shares && this.decoders >= this.opts.maxDecoders && !this.#evictIdle()) return this.#refuse(stream);
    }
    if (!line) {
      line = { key, stream, width, height, usedAt: now };
      this.#lines.set(key, line);
      this.#watch(stream);
      this.#keep(line);
    }
    line.pendingKey = pendingKey;
    const entry = this.#decode(line);
    return this.#wait(entry, signal);
  }

  #refuse(stream: Stream): Promise<never> {
    countRefusal('snapshot_decoders');
    busyLog.hit({ max: this.opts.maxDecoders, stream: stream.name });
    // One error for every refusal: a burst refuses 100+ at once, each capturing a stack otherwise.
    this.#busy ??= new SnapshotsBusy(this.opts.maxDecoders);
    return Promise.reject(this.#busy);
  }

  /** The decoder a live stream's held keyframe would use at this size; undefined when it has none. */
  #keyFor(stream: Stream, width: number | undefined, height: number | undefined): string | undefined {
    const held = stream.state === 'live' ? stream.lastKeyframe : undefined;
    const codec = held && snapshotCodec(held.track.codec.name);
    return held && codec ? sharedKey(codec, parameterSetsOf(held), width, height) : undefined;
  }

  /** Stops every decoder; resolves when their processes are gone. */
  close(): Promise<void> {
    this.#closed = true;
    const done = [...this.#shared.values()].map((s) => s.dec.done);
    for (const l of [...this.#lines.values()]) this.#drop(l, new SourceError('snapshots stopped'));
    for (const s of [...this.#shared.values()]) s.dec.close();
    return Promise.all(done).then(() => undefined);
  }

  /** The last JPEG if it still answers: its keyframe is the stream's latest, or it is younger than cacheMs. */
  #fresh(line: Line, now: number): Buffer | undefined {
    const last = line.last;
    if (!last) return undefined;
    if (now - last.at < this.opts.cacheMs) return last.jpeg;
    const held = line.stream.state === 'live' ? line.stream.lastKeyframe : undefined;
    if (held !== undefined && held === last.frame.deref()) return last.jpeg;
    return undefined;
  }

  #decode(line: Line): Running {
    const abort = new AbortController();
    const { timeoutMs } = this.opts;
    const jpeg = (async () => {
      try {
        return await this.#decodeOn(line, abort, timeoutMs);
      } catch (e) {
        throw line.gone ?? e;
      }
    })();
    const entry: Running = { jpeg, abort, waiters: 0 };
    line.running = entry;
    const end = (): void => {
      if (line.running === entry) line.running = undefined;
    };
    jpeg.then(end, end);
    return entry;
  }

  /** Waits for the stream's keyframe, finds or starts the decoder for it, and decodes it there. */
  async #decodeOn(line: Line, abort: AbortController, timeoutMs: number): Promise<Buffer> {
    const frame = await captureKeyframe(line.stream, timeoutMs, abort.signal);
    const codec = snapshotCodec(frame.track.codec.name);
    if (!codec) throw new SourceError(`stream "${line.stream.name}" has no H.264/H.265 video`);
    const sets = parameterSetsOf(frame);
    const key = sharedKey(codec, sets, line.width, line.height);
    // A codec or parameter-set change (a reconnect to a reconfigured camera) moves the line to
    // the decoder for the new ones. (A decoder that closed is already gone from the line and the
    // map: its 'close' is emitted within close().)
    if (line.decoder && line.decoder.key !== key) this.#detach(line);
    let shared = line.decoder ?? this.#shared.get(key);
    if (!shared) {
      // Spawning is synchronous (~3–10 ms each): each decoder gets its own event-loop turn.
      await this.#spawnTurn();
      if (abort.signal.aborted) throw new SnapshotAborted();
      shared = this.#shared.get(key);
      if (!shared) {
        // The hard bound on processes: jpeg()'s admission only estimated which decoder it needs.
        if (this.#shared.size >= this.opts.maxDecoders && !this.#evictIdle()) await this.#refuse(line.stream);
        shared = this.#startDecoder(line, key, codec);
      }
    }
    if (line.gone) throw line.gone;
    if (this.#lines.get(line.key) !== line) throw new SourceError(`stream "${line.stream.name}" was removed`);
    this.#attach(line, shared);
    const unlock = await this.#lock(shared, abort.signal);
    try {
      const release = await this.#decoderSlot(abort.signal);
      try {
        if (line.gone) throw line.gone;
        const out = await shared.dec.decode(frame, abort.signal);
        if (line.gone) throw line.gone;
        line.last = { frame: new WeakRef(frame), jpeg: out, at: performance.now() };
        return out;
      } finally {
        release();
      }
    } finally {
      unlock();
    }
  }

  #startDecoder(line: Line, key: string, codec: 'H264' | 'H265'): Shared {
    const dec = new SnapshotDecoder({
      ffmpegBin: this.opts.ffmpegBin,
      grace: this.opts.grace,
      codec,
      width: line.width,
      height: line.height,
      stream: line.stream.name,
    });
    const shared: Shared = { key, dec, lines: new Set(), tail: Promise.resolve(), queued: 0 };
    this.#shared.set(shared.key, shared);
    dec.once('close', () => {
      if (this.#shared.get(shared.key) === shared) this.#shared.delete(shared.key);
      for (const l of shared.lines) if (l.decoder === shared) l.decoder = undefined;
      shared.lines.clear();
    });
    return shared;
  }

  #attach(line: Line, shared: Shared): void {
    if (line.decoder === shared) return;
    this.#detach(line);
    line.decoder = shared;
    shared.lines.add(line);
  }

  /** The line stops using its decoder; the decoder's last line closes it. */
  #detach(line: Line): void {
    const shared = line.decoder;
    if (!shared) return;
    line.decoder = undefined;
    shared.lines.delete(line);
    this.#closeIfUnused(shared);
  }

  /** A decoder no line uses and no decode holds or waits for is closed. */
  #closeIfUnused(shared: Shared): void {
    if (shared.lines.size === 0 && shared.queued === 0) shared.dec.close();
  }

  /** Waits (FIFO) for the shared decoder; the unlock must be called once. */
  async #lock(shared: Shared, signal: AbortSignal): Promise<() => void> {
    const before = shared.tail;
    let unlock!: () => void;
    shared.tail = new Promise<void>((resolve) => (unlock = resolve));
    shared.queued++;
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      shared.queued--;
      unlock();
      this.#closeIfUnused(shared);
    };
    // Each decode ends within the decoder's own deadline, so this wait is bounded.
    await before;
    if (signal.aborted) {
      release();
      throw new SnapshotAborted();
    }
    return release;
  }

  /** (Re)arms the line's quiet timer: no request for keepMs closes its decoder and forgets it. */
  #keep(line: Line): void {
    clearTimeout(line.keep);
    line.keep = setTimeout(() => {
      line.keep = undefined;
      if (line.running) return this.#keep(line);
      this.#drop(line);
    }, this.opts.keepMs ?? SNAPSHOT_DECODER_KEEP_MS);
  }

  #holdsSlot(line: Line): boolean {
    return line.decoder !== undefined || line.running !== undefined;
  }

  /** Closes the least recently used decoder that is not decoding; false when every slot is busy. */
  #evictIdle(): boolean {
    let oldest: Shared | undefined;
    let oldestAt = Infinity;
    for (const s of this.#shared.values()) {
      if (s.queued > 0 || [...s.lines].some((l) => l.running)) continue;
      const at = Math.max(...[...s.lines].map((l) => l.usedAt));
      if (at < oldestAt) {
        oldest = s;
        oldestAt = at;
      }
    }
    if (!oldest) return false;
    // Its close event detaches its lines.
    oldest.dec.close();
    return true;
  }

  /**
   * Forgets a line: its timer cleared, its decoder closed (a decode on it fails with `reason`; one
   * still waiting for its keyframe ends with its stream, or finds its line gone before it spawns).
   */
  #drop(line: Line, reason?: Error): void {
    if (this.#lines.get(line.key) === line) this.#lines.delete(line.key);
    clearTimeout(line.keep);
    line.keep = undefined;
    if (reason && line.running) {
      // A decode under way for it answers `reason`; the decoder goes on for the other lines.
      line.gone = reason;
      line.running.abort.abort();
    }
    this.#detach(line);
    line.last = undefined;
    if (![...this.#lines.values()].some((l) => l.stream === line.stream)) this.#unwatch(line.stream);
  }

  /** A closed stream (removed, or camrelay stopping) takes its decoders with it. */
  #watch(stream: Stream): void {
    if (this.#streams.has(stream)) return;
    const onClose = (): void => {
      const gone = new SourceError(`stream "${stream.name}" was removed`);
      for (const l of [...this.#lines.values()]) if (l.stream === stream) this.#drop(l, gone);
      this.#unwatch(stream);
    };
    this.#streams.set(stream, onClose);
    stream.once('close', onClose);
  }

  #unwatch(stream: Stream): void {
    const onClose = this.#streams.get(stream);
    if (!onClose) return;
    this.#streams.delete(stream);
    stream.off('close', onClose);
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

  /** Decodes running now (at most runningDecoders; the other admitted decodes wait for one). */
  get runningDecoders(): number {
    return this.#runningDecoders;
  }

  /** Waits (FIFO) for a decode to run; the release must be called once. Rejects on abort. */
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
}
