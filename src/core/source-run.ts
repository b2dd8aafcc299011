// One run of one source of a stream's list: from the moment the stream made it to the moment it
// ended, with what the stream keeps of it (tracks, current GOP, counters). A source that starts
// again is a new run; frames of an old run still queued in the fan-out are recognised as stale.
import type { Backoff } from './backoff.js';
import type { FrameOrigin } from './delivery-gate.js';
import { SourceError } from './errors.js';
import { GopCache, type GopCacheSettings } from './gop-cache.js';
import { maskCredentials, type Logger } from './log.js';
import { describeTrack, type Frame, type MediaRequest, type Track } from './media.js';
import type { PlannedRun } from './source-plan.js';
import type { Source } from './source.js';
import { StallError, StallWatch } from './stall-watch.js';

let runIds = 0;

export class SourceRun implements PlannedRun {
  /** Unique in the process: a consumer's gate names a run without keeping it (and its GOP) alive. */
  readonly id = ++runIds;
  readonly abort = new AbortController();
  /** Undefined while starting. */
  tracks?: Track[];
  liveSince = 0;
  /** The current GOP of its video track: late joiners start from it, snapshots from its keyframe. */
  readonly gop: GopCache;
  /** Video frames received so far. */
  videoSeq = 0;
  /** Frames of every kind received so far: all the stall watch reads (see StallWatch). */
  frames = 0;
  /** Media bytes received so far (frame payloads, without RTP headers). */
  bytes = 0;

  constructor(
    /** Its index in the stream's list; 0 is the primary. */
    readonly index: number,
    readonly source: Source,
    /** Secondary sources retry on their own; the primary's failures go through the stream. */
    readonly backoff: Backoff,
    gopCache: GopCacheSettings | undefined,
    /** An external publisher: not ours to stop when nobody watches. */
    readonly pushed: boolean,
  ) {
    this.gop = new GopCache(gopCache);
  }

  /** Counts a frame of this run and keeps it in the GOP; returns where it stands in the run. */
  took(f: Frame): FrameOrigin {
    this.frames++;
    for (const d of f.data) this.bytes += d.length;
    if (f.track.kind === 'video') {
      this.gop.push(f);
      this.videoSeq++;
    }
    return this.latest;
  }

  /** The run's latest video frame, as a gate names it. */
  get latest(): FrameOrigin {
    return { runId: this.id, seq: this.videoSeq };
  }

  /** ms it has been live (0 when it never went live). */
  ranFor(now = Date.now()): number {
    return this.liveSince ? now - this.liveSince : 0;
  }

  /** Ends it without a failure of its own: aborts a start still running and closes the source. */
  end(): void {
    this.abort.abort();
    this.source.close();
  }
}

/** What the stream does when its runs report. */
export interface RunEvents {
  /** Wired, about to start: the stream's 'source' event. */
  starting(run: SourceRun): void;
  /** start() resolved and the run is still current; `run.tracks` is set. */
  live(run: SourceRun): void;
  /** A current run's source closed (by itself, failing or stalled); it is already forgotten. */
  ended(run: SourceRun, err: Error): void;
  /** A frame of a current run, counted and in its GOP. */
  frame(run: SourceRun, f: Frame, origin: FrameOrigin): void;
}

/**
 * The running sources of a stream, by index, and those still stopping: what the stream starts,
 * ends and waits for. A run is current until it ends or another run takes its index; events of a
 * run that is no longer current are dropped here, so the stream only ever hears of current ones.
 */
export class SourceRuns {
  #byIndex = new Map<number, SourceRun>();
  /** Sources being stopped, until they are really gone: close() and restarts wait for them. */
  #stopping = new Set<Promise<void>>();
  /** Live runs that send nothing for stall_timeout are closed as failed (its timer only while one is live). */
  #stall: StallWatch<SourceRun>;

  constructor(
    private readonly events: RunEvents,
    stallTimeout: () => number | undefined,
    private readonly log: Logger,
  ) {
    this.#stall = new StallWatch<SourceRun>(stallTimeout, (run, silentMs, timeoutMs) => this.#stalled(run, silentMs, timeoutMs));
  }

  get(index: number): SourceRun | undefined {
    return this.#byIndex.get(index);
  }
  has(index: number): boolean {
    return this.#byIndex.has(index);
  }
  /** Whether `run` is still the current run of its index (not ended, not replaced). */
  current(run: SourceRun): boolean {
    return this.#byIndex.get(run.index) === run;
  }
  get size(): number {
    return this.#byIndex.size;
  }
  /** Whether some source is still stopping. */
  get stopping(): boolean {
    return this.#stopping.size > 0;
  }
  /** In list order (the primary first). */
  sorted(): SourceRun[] {
    return [...this.#byIndex.values()].sort((a, b) => a.index - b.index);
  }
  /** Tracks of every live run, in list order. */
  get tracks(): Track[] {
    return this.sorted().flatMap((r) => r.tracks ?? []);
  }
  /** The latest video keyframe of the first run that holds one. */
  get lastKeyframe(): Frame | undefined {
    for (const run of this.sorted()) if (run.gop.keyframe) return run.gop.keyframe;
    return undefined;
  }

  /** Makes `run` the current one of its index and starts its source. */
  start(run: SourceRun, want: MediaRequest): void {
    const src = run.source;
    this.#byIndex.set(run.index, run);
    src.on('close', (err?: Error) => {
      if (!this.current(run)) return;
      this.#forget(run);
      this.events.ended(run, err ?? new SourceError('source ended'));
    });
    src.on('frame', (f: Frame) => {
      if (this.current(run)) this.events.frame(run, f, run.took(f));
    });
    this.events.starting(run);
    src.start(run.abort.signal, want).then(
      (tracks) => {
        if (!this.current(run) || run.abort.signal.aborted) return;
        run.tracks = tracks;
        run.liveSince = Date.now();
        this.#stall.watch(run);
        this.log.info({ index: run.index, tracks: tracks.map(describeTrack) }, 'source live');
        this.events.live(run);
      },
      (err: unknown) => {
        // Closing it with the error runs the 'close' listener above, which reports it once.
        if (this.current(run)) src.close(err instanceof Error ? err : new SourceError(String(err)));
      },
    );
  }

  /** Ends `run` without a failure reported (the stream stops it, or replaces it). */
  end(run: SourceRun): void {
    if (!this.current(run)) return;
    this.#forget(run);
    run.end();
  }

  endAll(): void {
    for (const run of this.sorted()) this.end(run);
  }

  /** Settles once every source ended so far is really gone. */
  allStopped(): Promise<void> {
    return Promise.all([...this.#stopping]).then(() => undefined);
  }

  close(): void {
    this.#stall.close();
  }

  #forget(run: SourceRun): void {
    this.#byIndex.delete(run.index);
    this.#stall.unwatch(run);
    const done = run.source.done;
    this.#stopping.add(done);
    void done.then(() => this.#stopping.delete(done));
  }

  /**
   * A live source that sent nothing for stall_timeout: closed with a StallError, which its
   * 'close' listener reports as any failure (backoff while watched; viewers stay attached).
   */
  #stalled(run: SourceRun, silentMs: number, timeoutMs: number): void {
    if (!this.current(run)) return;
    this.log.warn({ index: run.index, source: maskCredentials(run.source.url), silentMs, stallTimeout: timeoutMs }, 'source stalled');
    run.source.close(new StallError(silentMs, timeoutMs));
  }
}
