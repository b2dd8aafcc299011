import { Owned } from './owned.js';
import { Backoff, type BackoffSettings } from './backoff.js';
import { GopCache, type GopCacheSettings } from './gop-cache.js';
import { SlicedFanOut } from './sliced-fan-out.js';
import { SourceError, StartTimeoutError, StreamClosedError, errorMessage } from './errors.js';
import { log, maskCredentials, type Logger } from './log.js';
import type { Consumer } from './consumer.js';
import { ALL_CODECS, describeTrack, type Frame, type Kind, type MediaRequest, type Track } from './media.js';
import type { Source, SourceFactory } from './source.js';
import { StallError, StallWatch } from './stall-watch.js';

export interface StreamSettings {
  /** ms to keep the source after the last consumer left; 0 stops it at once. */
  idleTimeout: number;
  /** ms a consumer waits for the source to go live before it gets an error. */
  startTimeout: number;
  backoff: BackoffSettings;
  /** Default DEFAULT_GOP_CACHE. */
  gopCache?: GopCacheSettings;
  /** ms a live source may deliver no frame before it is restarted like a failed one; undefined: never. */
  stallTimeout?: number;
}

export type StreamState = 'idle' | 'starting' | 'live' | 'backoff' | 'stopping';

const KINDS: Kind[] = ['video', 'audio'];

/**
 * The longest a stream hands frames to its consumers in one event-loop turn before letting
 * timers, signalling and other streams run (see SlicedFanOut).
 */
export const FAN_OUT_SLICE_MS = 4;

let runIds = 0;

/** A frame on its way to the consumers, with the run it came from (stale once that run ended). */
interface Delivery {
  frame: Frame;
  run: Run;
  /** The run's count of video frames up to this one (see Attachment.caughtUp). */
  seq: number;
}

/** The kinds an `ffmpeg:<stream>#video=…#audio=…` transcode reads: those it names, else both. */
function loopKinds(url: string): Kind[] {
  const named = KINDS.filter((k) => url.includes(`#${k}=`));
  return named.length > 0 ? named : KINDS;
}

interface Waiter {
  resolve: (tracks: Track[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Attachment {
  onClose: () => void;
  /** Per kind, the index of the source whose track this consumer takes; fixed once resolved. */
  from: Map<Kind, number>;
  /** Video is held back until the consumer's first keyframe (again after each reconnect). */
  awaitingKeyframe: boolean;
  /**
   * What catchUp() gave it: the run's video frames up to `seq`. Those of them still being fanned
   * out (a slice boundary fell before this consumer) must not reach it a second time.
   */
  caughtUp?: { runId: number; seq: number };
  waiter?: Waiter;
}

/** One running source of the list, by its index. */
interface Run {
  /** Unique in the process: an attachment names a run without keeping it (and its GOP) alive. */
  id: number;
  index: number;
  source: Source;
  abort: AbortController;
  /** Undefined while starting. */
  tracks?: Track[];
  liveSince: number;
  /** Secondary sources retry on their own; the primary's failures go through the stream. */
  backoff: Backoff;
  /** The current GOP of its video track: late joiners start from it, snapshots from its keyframe. */
  gop: GopCache;
  /** An external publisher: not ours to stop when nobody watches. */
  pushed?: boolean;
  /** Video frames received so far. */
  videoSeq: number;
  /** Frames of every kind received so far: all the stall watch reads (see StallWatch). */
  frames: number;
  /** Media bytes received so far (frame payloads, without RTP headers). */
  bytes: number;
}

export interface BackoffEvent {
  attempt: number;
  delay: number;
  ceiling: number;
  error: Error;
  /** Index of the source in the stream's list. */
  source: number;
}

/**
 * One named stream: the state machine of DESIGN.md (idle → starting → live → backoff → stopping
 * → idle), driven by its first source. The first consumer starts it, the last one leaving stops
 * it, failures retry with jittered backoff only while consumers remain. Later sources in the list
 * start only when a consumer wants a kind (video, audio) the earlier ones lack: the Home
 * Assistant pattern [rtsp://cam, ffmpeg:cam#audio=opus] takes video from the camera and Opus from
 * a transcode of this stream. Such a transcode reads the stream back as an `internal` consumer:
 * it neither keeps the stream alive nor starts it, and only takes tracks of non-loop sources.
 * Events: 'state' (StreamState), 'backoff' (BackoffEvent), 'source' (Source) when one starts.
 */
export class Stream extends Owned {
  #state: StreamState = 'idle';
  #runs = new Map<number, Run>();
  /** Sources tried since the primary went live that gave nothing usable or failed. */
  #exhausted = new Set<number>();
  #consumers = new Map<Consumer, Attachment>();
  #backoff: Backoff;
  #retryTimers = new Map<number, NodeJS.Timeout>();
  /** Secondary sources to start again once the primary is back after a reconnect. */
  #resume = new Set<number>();
  #idleTimer: NodeJS.Timeout | undefined;
  /** hold()s not yet released: the source stays while the last consumer is being replaced. */
  #holds = 0;
  #lastError: Error | undefined;
  /** Sources being stopped, until they are really gone: close() and restarts wait for them. */
  #stopping = new Set<Promise<void>>();
  #fanOut = new SlicedFanOut<Delivery, [Consumer, Attachment]>(
    () => this.#consumers.entries(),
    (d, [c, a]) => this.#deliverTo(d, c, a),
    FAN_OUT_SLICE_MS,
  );
  /** Live runs that send nothing for stall_timeout are closed as failed (its timer only while one is live). */
  #stall = new StallWatch<Run>(
    () => this.settings.stallTimeout,
    (run, silentMs, timeoutMs) => this.#stalled(run, silentMs, timeoutMs),
  );
  #log: Logger;

  constructor(
    readonly name: string,
    public sources: string[],
    public settings: StreamSettings,
    private readonly makeSource: SourceFactory,
    private readonly random?: () => number,
  ) {
    super('Stream');
    this.#backoff = new Backoff(settings.backoff, random);
    this.#log = log.child({ stream: name });
  }

  get state(): StreamState {
    return this.#state;
  }
  /** Tracks of every live source, in source order. */
  get tracks(): readonly Track[] {
    return [...this.#runs.values()].sort((a, b) => a.index - b.index).flatMap((r) => r.tracks ?? []);
  }
  get consumers(): Consumer[] {
    return [...this.#consumers.keys()];
  }
  /** The running sources (the first is the primary). */
  get running(): Source[] {
    return [...this.#runs.values()].sort((a, b) => a.index - b.index).map((r) => r.source);
  }
  /** Media bytes a running source has delivered since it started (go2rtc's bytes_recv). */
  bytesFrom(src: Source): number | undefined {
    for (const r of this.#runs.values()) if (r.source === src) return r.bytes;
    return undefined;
  }
  /** The primary source while it runs. */
  get source(): Source | undefined {
    return this.#runs.get(0)?.source;
  }
  /** The latest video keyframe of the first running source that has one. */
  get lastKeyframe(): Frame | undefined {
    for (const run of [...this.#runs.values()].sort((a, b) => a.index - b.index)) if (run.gop.keyframe) return run.gop.keyframe;
    return undefined;
  }

  /**
   * For a consumer about to start its video (a WebRTC peer that just connected, an RTSP player
   * that just sent PLAY): the frames of the current GOP, from its keyframe up to the latest
   * frame, to send at once. From this call on the consumer also gets every live video frame,
   * which continue that GOP. Empty when nothing decodable is held: the consumer then starts at
   * the next keyframe, as without a cache.
   */
  catchUp(c: Consumer): readonly Frame[] {
    const a = this.#consumers.get(c);
    const index = a && !a.waiter ? a.from.get('video') : undefined;
    const run = index === undefined ? undefined : this.#runs.get(index);
    const frames = run?.tracks ? run.gop.frames : [];
    if (frames.length === 0 || !c.request.video?.includes(frames[0]!.track.codec.name)) return [];
    a!.awaitingKeyframe = false;
    a!.caughtUp = { runId: run!.id, seq: run!.videoSeq };
    return [...frames];
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** A source that transcodes this very stream (`ffmpeg:<this name>#…`). */
  isLoopSource(index: number): boolean {
    const url = this.sources[index] ?? '';
    return url === `ffmpeg:${this.name}` || url.startsWith(`ffmpeg:${this.name}#`);
  }

  /**
   * Adds a consumer and resolves with the tracks it gets (one per kind it asked for and the
   * stream has) once the sources that can provide them run. Rejects (and detaches the consumer)
   * on start timeout or a permanent or immediate source error (SourceError). The consumer is
   * dropped when it emits 'close'.
   */
  attach(consumer: Consumer): Promise<Track[]> {
    if (this.closed) return Promise.reject(new StreamClosedError(this.name, 'stream was removed'));
    if (consumer.closed) return Promise.reject(new Error('consumer already closed'));
    if (this.#consumers.has(consumer)) throw new Error('consumer attached twice');
    // A transcode of this stream must never be what starts it (it would start itself forever).
    if (consumer.internal && this.#state !== 'live') {
      return Promise.reject(new StreamClosedError(this.name, 'not running (a source reading its own stream cannot start it)'));
    }
    const a: Attachment = { onClose: () => this.detach(consumer), from: new Map(), awaitingKeyframe: true };
    consumer.once('close', a.onClose);
    this.#consumers.set(consumer, a);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#log.debug({ consumer: consumer.id, consumers: this.#consumers.size, internal: consumer.internal ?? false }, 'consumer attached');

    const p = new Promise<Track[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        a.waiter = undefined;
        this.detach(consumer);
        reject(new StartTimeoutError(this.name, this.settings.startTimeout, this.#lastError));
      }, this.settings.startTimeout);
      a.waiter = { resolve, reject, timer };
    });
    if (this.#state === 'idle') this.#startPrimary();
    else if (this.#state === 'live') this.#plan();
    return p;
  }

  detach(consumer: Consumer): void {
    const a = this.#consumers.get(consumer);
    if (!a) return;
    consumer.off('close', a.onClose);
    this.#consumers.delete(consumer);
    if (a.waiter) {
      clearTimeout(a.waiter.timer);
      a.waiter.reject(new StreamClosedError(this.name, 'consumer left before the stream started'));
    }
    this.#log.debug({ consumer: consumer.id, consumers: this.#consumers.size }, 'consumer detached');
    if (!this.#watched() && this.#holds === 0) this.#lastConsumerLeft();
  }

  /**
   * Keeps the running source while no consumer is attached, until the returned release is
   * called: a viewer that starts over closes its old session before the new one attaches (DESIGN
   * rule 5), and the source must not stop and start again in between. A hold is no consumer: it
   * is not listed, starts nothing and receives nothing. Releasing twice is harmless.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (this.#holds === 0 && !this.#watched()) this.#lastConsumerLeft();
    };
  }

  /** Whether anyone but our own transcodes watches. */
  #watched(): boolean {
    for (const c of this.#consumers.keys()) if (!c.internal) return true;
    return false;
  }

  #lastConsumerLeft(): void {
    if (this.closed) return;
    if (this.settings.idleTimeout > 0 && this.#state === 'live') {
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        if (!this.#watched()) this.#stop();
      }, this.settings.idleTimeout);
      return;
    }
    this.#stop();
  }

  #setState(s: StreamState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.#log.info({ state: s }, 'stream state');
    this.emit('state', s);
  }

  #startPrimary(): void {
    this.#setState('starting');
    this.#exhausted.clear();
    // A stream without sources is fed by publishers: viewers wait for one (up to start_timeout).
    if (this.sources.length === 0) {
      this.#lastError = new SourceError('no publisher is connected');
      return;
    }
    this.#startRun(0, this.#wanted(KINDS, true));
  }

  /**
   * An external publisher becomes the primary source while it stays connected, replacing a
   * running pull source or an earlier publisher (closed first: DESIGN rule 5).
   */
  acceptPublisher(src: Source): void {
    if (this.closed) {
      src.close(new SourceError(`stream "${this.name}" was removed`));
      return;
    }
    const old = this.#runs.get(0);
    if (old) {
      this.#runs.delete(0);
      old.abort.abort();
      old.source.close();
      this.#track(old.source.done);
    }
    clearTimeout(this.#retryTimers.get(0));
    this.#retryTimers.delete(0);
    for (const a of this.#consumers.values()) a.awaitingKeyframe = true;
    if (this.#state !== 'live') this.#setState('starting');
    this.#startRun(0, this.#wanted(KINDS, true), undefined, src);
  }

  /**
   * The union of what the external consumers accept, per kind (optionally only some kinds). For
   * the primary, also every codec of the kinds a transcode of this stream reads: the camera's
   * AAC is what `ffmpeg:<name>#audio=opus` turns into Opus, though no viewer takes AAC itself.
   */
  #wanted(kinds: Kind[] = KINDS, forTranscodes = false): MediaRequest {
    const want: MediaRequest = {};
    if (forTranscodes) {
      for (let i = 1; i < this.sources.length; i++) {
        if (!this.isLoopSource(i)) continue;
        for (const kind of loopKinds(this.sources[i]!)) if (kinds.includes(kind)) want[kind] = [...ALL_CODECS[kind]];
      }
    }
    for (const c of this.#consumers.keys()) {
      if (c.internal) continue;
      for (const kind of kinds) {
        const codecs = c.request[kind];
        if (!codecs) continue;
        want[kind] = [...new Set([...(want[kind] ?? []), ...codecs])];
      }
    }
    return want;
  }

  #startRun(index: number, want: MediaRequest, backoff?: Backoff, pushed?: Source): void {
    const url = pushed?.url ?? this.sources[index]!;
    let src: Source;
    try {
      src = pushed ?? this.makeSource(url, this.name);
    } catch (e) {
      const err = e instanceof SourceError ? e : new SourceError(errorMessage(e), true);
      if (index === 0) this.#primaryFailed(err);
      else this.#secondaryFailed(index, err, undefined);
      return;
    }
    const run: Run = {
      id: ++runIds,
      index,
      source: src,
      abort: new AbortController(),
      liveSince: 0,
      backoff: backoff ?? new Backoff(this.settings.backoff, this.random),
      gop: new GopCache(this.settings.gopCache),
      pushed: pushed !== undefined,
      videoSeq: 0,
      frames: 0,
      bytes: 0,
    };
    this.#runs.set(index, run);
    this.#log.info({ source: maskCredentials(url), index }, 'source starting');
    src.on('close', (err?: Error) => {
      if (this.#runs.get(index) !== run) return;
      this.#runEnded(run, err ?? new SourceError('source ended'));
    });
    src.on('frame', (f: Frame) => {
      if (this.#runs.get(index) !== run) return;
      run.frames++;
      for (const d of f.data) run.bytes += d.length;
      if (f.track.kind === 'video') {
        run.gop.push(f);
        run.videoSeq++;
      }
      this.#fanOut.push({ frame: f, run, seq: run.videoSeq });
    });
    this.emit('source', src);
    src.start(run.abort.signal, want).then(
      (tracks) => {
        if (this.#runs.get(index) !== run || run.abort.signal.aborted) return;
        run.tracks = tracks;
        run.liveSince = Date.now();
        this.#stall.watch(run);
        this.#log.info({ index, tracks: tracks.map(describeTrack) }, 'source live');
        if (index === 0) {
          this.#lastError = undefined;
          this.#setState('live');
          const resume = [...this.#resume];
          this.#resume.clear();
          for (const i of resume) if (!this.#runs.has(i)) this.#startRun(i, this.#wanted());
        }
        this.#plan();
      },
      (err: unknown) => {
        if (this.#runs.get(index) !== run) return;
        // Closing it with the error runs the 'close' listener above, which handles the failure once.
        src.close(err instanceof Error ? err : new SourceError(String(err)));
      },
    );
  }

  #runEnded(run: Run, err: Error): void {
    this.#runs.delete(run.index);
    this.#stall.unwatch(run);
    this.#track(run.source.done);
    if (run.pushed && this.sources.length === 0) {
      // Nothing of ours to retry: viewers stay and continue when a publisher comes back.
      this.#log.info({ err: maskCredentials(err.message) }, 'publisher left');
      this.#lastError = err;
      for (const r of [...this.#runs.values()]) this.#runEndedQuietly(r);
      for (const a of this.#consumers.values()) a.awaitingKeyframe = true;
      this.#setState(this.#watched() ? 'starting' : 'idle');
      return;
    }
    if (run.index === 0) this.#primaryFailed(err, run);
    else this.#secondaryFailed(run.index, err, run);
  }

  #runEndedQuietly(run: Run): void {
    this.#runs.delete(run.index);
    this.#stall.unwatch(run);
    run.abort.abort();
    run.source.close();
    this.#track(run.source.done);
  }

  /**
   * A live source that sent nothing for stall_timeout: closed with a StallError, which its
   * 'close' listener handles as any failure (backoff while watched; viewers stay attached).
   */
  #stalled(run: Run, silentMs: number, timeoutMs: number): void {
    if (this.#runs.get(run.index) !== run) return;
    this.#log.warn({ index: run.index, source: maskCredentials(run.source.url), silentMs, stallTimeout: timeoutMs }, 'source stalled');
    run.source.close(new StallError(silentMs, timeoutMs));
  }

  /** Keeps a stopping source's `done` until it settles: close() and restarts wait for it. */
  #track(done: Promise<void>): void {
    this.#stopping.add(done);
    void done.then(() => this.#stopping.delete(done));
  }

  /**
   * After any source event: binds waiting consumers to the tracks of running sources, starts the
   * next source in the list when someone wants a kind nobody provides yet, and resolves the
   * waiters that can get nothing more.
   */
  #plan(): void {
    if (this.#state !== 'live') return;
    const pending = [...this.#runs.values()].some((r) => !r.tracks);
    let next: number | undefined;
    const missing = new Set<Kind>();
    for (const [c, a] of this.#consumers) {
      if (!a.waiter) continue;
      const from = this.#bindable(c);
      const lacks = KINDS.filter((k) => c.request[k] && !from.has(k));
      if (lacks.length > 0 && !c.internal) {
        const candidate = this.#nextCandidate();
        if (candidate !== undefined) {
          lacks.forEach((k) => missing.add(k));
          next = candidate;
          continue;
        }
      }
      // Our own transcode must not wait for sources: one of them may be the transcode itself.
      if (lacks.length > 0 && pending && !c.internal) continue;
      this.#resolve(c, a, from);
    }
    if (next !== undefined && missing.size > 0) this.#startRun(next, this.#wanted([...missing]));
  }

  /** Per kind the consumer accepts, the first running source (in list order) with such a track. */
  #bindable(c: Consumer): Map<Kind, number> {
    const from = new Map<Kind, number>();
    for (const run of [...this.#runs.values()].sort((x, y) => x.index - y.index)) {
      if (!run.tracks) continue;
      if (c.internal && this.isLoopSource(run.index)) continue;
      for (const t of run.tracks) {
        if (!from.has(t.kind) && c.request[t.kind]?.includes(t.codec.name)) from.set(t.kind, run.index);
      }
    }
    return from;
  }

  /** The next source not yet running or tried, when none is starting (one at a time). */
  #nextCandidate(): number | undefined {
    if ([...this.#runs.values()].some((r) => !r.tracks)) return undefined;
    for (let i = 1; i < this.sources.length; i++) {
      if (!this.#runs.has(i) && !this.#exhausted.has(i) && !this.#retryTimers.has(i)) return i;
    }
    return undefined;
  }

  #resolve(c: Consumer, a: Attachment, from: Map<Kind, number>): void {
    const w = a.waiter!;
    a.waiter = undefined;
    clearTimeout(w.timer);
    a.from = from;
    a.awaitingKeyframe = from.has('video');
    const tracks: Track[] = [];
    for (const [kind, index] of from) {
      const t = this.#runs.get(index)!.tracks!.find((x) => x.kind === kind && c.request[kind]?.includes(x.codec.name));
      if (t) tracks.push(t);
    }
    w.resolve(tracks);
  }

  #deliverTo({ frame: f, run, seq }: Delivery, c: Consumer, a: Attachment): void {
    // A frame of a run that ended while it waited (a reconnect): the consumers moved on.
    if (this.#runs.get(run.index) !== run) return;
    if (a.waiter || a.from.get(f.track.kind) !== run.index) return;
    if (f.track.kind === 'video') {
      if (a.caughtUp?.runId === run.id && seq <= a.caughtUp.seq) return;
      if (a.awaitingKeyframe) {
        if (!f.keyframe) return;
        a.awaitingKeyframe = false;
      }
    }
    try {
      c.onFrame(f);
    } catch (e) {
      this.#log.error({ consumer: c.id, err: errorMessage(e) }, 'consumer failed on a frame; closing it');
      try {
        c.close(e instanceof Error ? e : new Error(String(e)));
      } catch (closeErr) {
        // Its close failed too: it is detached all the same (close() emitted 'close'), and the
        // fan-out must go on to the other consumers.
        this.#log.error({ consumer: c.id, err: errorMessage(closeErr) }, 'consumer failed while closing');
      }
    }
  }

  #secondaryFailed(index: number, err: Error, run: Run | undefined): void {
    this.#log.warn({ index, err: maskCredentials(err.message) }, 'secondary source failed');
    const users = [...this.#consumers.values()].some((a) => [...a.from.values()].includes(index));
    if (!users || (err instanceof SourceError && err.permanent) || !run) {
      // Nobody relies on it yet: waiters go on with what the other sources give.
      this.#exhausted.add(index);
      this.#plan();
      return;
    }
    run.backoff.ranFor(run.liveSince ? Date.now() - run.liveSince : 0);
    const delay = run.backoff.next();
    this.emit('backoff', { attempt: run.backoff.attempts, delay, ceiling: run.backoff.ceiling, error: err, source: index } satisfies BackoffEvent);
    this.#log.info({ index, delay }, 'retrying secondary source');
    const backoff = run.backoff;
    const gone = run.source.done;
    this.#retryTimers.set(
      index,
      setTimeout(() => {
        this.#retryTimers.delete(index);
        void gone.then(() => {
          if (this.closed || this.#state !== 'live' || this.#runs.has(index)) return;
          for (const a of this.#consumers.values()) if (a.from.get('video') === index) a.awaitingKeyframe = true;
          this.#startRun(index, this.#wanted(), backoff);
        });
      }, delay),
    );
  }

  #primaryFailed(err: Error, run?: Run): void {
    const ranFor = run?.liveSince ? Date.now() - run.liveSince : 0;
    this.#lastError = err;
    this.#log.warn({ err: maskCredentials(err.message), ranFor }, 'source failed');
    this.#backoff.ranFor(ranFor);
    this.#setState('stopping');
    this.#closeRuns();
    if (err instanceof SourceError && err.immediate) {
      // Waiting viewers learn at once: retrying a missing file, or a camera that refused or
      // answered 401/403/404, until start_timeout helps nobody. Each of them asked once (an
      // offer, a snapshot, an RTSP PLAY) and gets the reason now; a preload re-attaches on its own
      // backoff. Consumers already playing are no waiters: they stay attached and the source is
      // retried with backoff while they do (DESIGN: viewers stay across a reconnect). Once nobody
      // is attached the stream goes idle below and no retry follows.
      for (const [c, a] of this.#consumers) {
        if (!a.waiter) continue;
        const w = a.waiter;
        a.waiter = undefined;
        clearTimeout(w.timer);
        this.detach(c);
        w.reject(err);
      }
    }
    void this.#allStopped().then(() => {
      if (this.closed || this.#state !== 'stopping') return;
      if (!this.#watched()) {
        this.#backoff.reset();
        this.#setState('idle');
        return;
      }
      // Everyone re-binds and waits for a keyframe from the new connection.
      for (const a of this.#consumers.values()) a.awaitingKeyframe = true;
      const ceiling = this.#backoff.ceiling;
      const attempt = this.#backoff.attempts;
      const delay = this.#backoff.next();
      this.#setState('backoff');
      this.emit('backoff', { attempt, delay, ceiling, error: err, source: 0 } satisfies BackoffEvent);
      this.#log.info({ attempt, delay, ceiling, err: maskCredentials(err.message) }, 'retrying source');
      this.#retryTimers.set(
        0,
        setTimeout(() => {
          this.#retryTimers.delete(0);
          if (!this.closed && this.#watched()) this.#restartPrimary();
        }, delay),
      );
    });
  }

  /** After a reconnect the consumers keep their bindings: same kinds from the same sources. */
  #restartPrimary(): void {
    this.#setState('starting');
    this.#exhausted.clear();
    // Secondaries that consumers were using come back once the primary is live.
    this.#resume.clear();
    for (const a of this.#consumers.values()) for (const i of a.from.values()) if (i > 0) this.#resume.add(i);
    this.#startRun(0, this.#wanted(KINDS, true));
  }

  /** Closes every running source and forgets pending retries. */
  #closeRuns(): void {
    for (const t of this.#retryTimers.values()) clearTimeout(t);
    this.#retryTimers.clear();
    for (const run of [...this.#runs.values()]) this.#runEndedQuietly(run);
  }

  #allStopped(): Promise<void> {
    return Promise.all([...this.#stopping]).then(() => undefined);
  }

  #stop(): void {
    this.#backoff.reset();
    if (this.#runs.get(0)?.pushed) {
      // A publisher keeps pushing whether or not anyone watches; only what we started stops.
      for (const r of [...this.#runs.values()]) if (!r.pushed) this.#runEndedQuietly(r);
      for (const c of [...this.#consumers.keys()]) if (c.internal) c.close(new StreamClosedError(this.name, 'stream stopped'));
      return;
    }
    const hadRuns = this.#runs.size > 0 || this.#stopping.size > 0;
    this.#closeRuns();
    // Our own transcodes reading this stream go with it.
    for (const c of [...this.#consumers.keys()]) if (c.internal) c.close(new StreamClosedError(this.name, 'stream stopped'));
    if (!hadRuns) {
      if (this.#state !== 'stopping') this.#setState('idle');
      return;
    }
    if (this.#state === 'stopping' && !this.#watched()) {
      // Already stopping after a failure: its continuation goes to idle.
      return;
    }
    this.#setState('stopping');
    this.#log.info('last consumer left: stopping source');
    void this.#allStopped().then(() => {
      if (this.closed || this.#state !== 'stopping') return;
      this.#setState('idle');
      // A consumer that came while the old source was still exiting starts a fresh one.
      if (this.#watched()) this.#startPrimary();
    });
  }

  protected onClose(): Promise<void> {
    this.#fanOut.clear();
    this.#stall.close();
    for (const c of [...this.#consumers.keys()]) {
      this.detach(c);
      c.close(new StreamClosedError(this.name, 'stream closed'));
    }
    // After the detaches: the last one may have armed an idle timer.
    clearTimeout(this.#idleTimer);
    this.#closeRuns();
    this.#state = 'idle';
    return this.#allStopped();
  }
}
