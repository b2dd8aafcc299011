import { Owned } from './owned.js';
import { hasBackchannel, type Backchannel } from './backchannel.js';
import { TalkSlot, type Talk } from './talk.js';
import { Backoff, RetryTimers } from './backoff.js';
import { SourceError, StartTimeoutError, StreamClosedError, errorMessage } from './errors.js';
import { log, maskCredentials, type Logger } from './log.js';
import type { Consumer } from './consumer.js';
import { describeTrack, type Frame, type Kind, type MediaRequest, type Track } from './media.js';
import { KINDS, plan, SourceList, wanted } from './source-plan.js';
import { Secondaries } from './stream-secondaries.js';
import { SourceRun, SourceRuns } from './source-run.js';
import { toSourceMaker, type Source, type SourceFactory, type SourceMaker } from './source.js';
import { StreamConsumers } from './stream-consumers.js';
import { StreamDelivery } from './stream-delivery.js';
import type { SourceBinding, StreamEvents, StreamSettings } from './stream-types.js';
import { checkTransition, type StreamState } from './stream-states.js';

export type { StreamState } from './stream-states.js';
export type { BackoffEvent, SourceBinding, StreamEvents, StreamSettings } from './stream-types.js';
export { FAN_OUT_SLICE_MS } from './stream-delivery.js';

/**
 * One named stream: the lifecycle of DESIGN.md (states and transitions: stream-states.ts),
 * driven by its first source. The first consumer starts it, the last one leaving stops it,
 * failures retry with jittered backoff only while consumers remain. Later sources in the list
 * start only when a consumer wants a kind (video, audio) the earlier ones lack (source-plan.ts):
 * the Home Assistant pattern [rtsp://cam, ffmpeg:cam#audio=opus] takes video from the camera and
 * Opus from a transcode of this stream. Such a transcode reads the stream back as an `internal`
 * consumer: it neither keeps the stream alive nor starts it, and only takes tracks of sources
 * that do not read this stream. Frames reach each consumer through its gate (delivery-gate.ts).
 * With `transcode: auto` the list goes on with the stream's automatic transcodes
 * (SourceMaker.transcodes), and a secondary nobody uses stops (stream-secondaries.ts).
 */
export class Stream extends Owned<StreamEvents> {
  #state: StreamState = 'idle';
  #runs: SourceRuns;
  #consumers = new StreamConsumers();
  #backoff: Backoff;
  #retries = new RetryTimers();
  #list: SourceList;
  /** Secondary sources to start again once the primary is back after a reconnect. */
  #resume = new Set<number>();
  #idleTimer: NodeJS.Timeout | undefined;
  /** hold()s not yet released: the source stays while the last consumer is being replaced. */
  #holds = 0;
  #lastError: Error | undefined;
  #delivery: StreamDelivery;
  #secondaries: Secondaries;
  #maker: SourceMaker;
  #log: Logger;
  #talk: TalkSlot;

  constructor(
    readonly name: string,
    public sources: string[],
    public settings: StreamSettings,
    makeSource: SourceFactory | SourceMaker,
    private readonly random?: () => number,
  ) {
    super('Stream');
    this.#maker = toSourceMaker(makeSource);
    const auto = () => (this.settings.transcode === 'never' ? [] : (this.#maker.transcodes?.(name) ?? []));
    this.#list = new SourceList(name, () => this.sources, this.#maker.reads, (i) => this.#retries.has(i), auto);
    this.#backoff = new Backoff(settings.backoff, random);
    this.#log = log.child({ stream: name });
    this.#talk = new TalkSlot(name, () => this.backchannel);
    this.#runs = new SourceRuns(
      {
        starting: (run) => this.emit('source', run.source),
        live: (run) => this.#runLive(run),
        ended: (run, err) => this.#runEnded(run, err),
        frame: (run, frame, origin) => this.#delivery.push(frame, run, origin),
      },
      () => this.settings.stallTimeout,
      this.#log,
    );
    this.#delivery = new StreamDelivery(this.#consumers, this.#runs, this.#log);
    this.#secondaries = new Secondaries({
      runs: this.#runs,
      list: this.#list,
      retries: this.#retries,
      consumers: this.#consumers,
      log: this.#log,
      live: () => !this.closed && this.#state === 'live',
      startRun: (i, want, backoff) => this.#startRun(i, want, backoff),
      plan: () => this.#plan(),
      backoff: (e) => this.emit('backoff', e),
    });
  }

  get state(): StreamState {
    return this.#state;
  }
  /** Tracks of every live source, in source order. */
  get tracks(): readonly Track[] {
    return this.#runs.tracks;
  }
  get consumers(): Consumer[] {
    return [...this.#consumers.keys()];
  }
  /** The running sources (the first is the primary). */
  get running(): Source[] {
    return this.#runs.sorted().map((r) => r.source);
  }
  /** A running source's tracks, and the media bytes it delivered since it started (go2rtc's bytes_recv). */
  runOf(src: Source): { tracks: readonly Track[]; bytes: number; auto: boolean } | undefined {
    const r = this.#runs.sorted().find((x) => x.source === src);
    return r && { tracks: r.tracks ?? [], bytes: r.bytes, auto: this.#list.isAuto(r.index) };
  }
  /** The primary source while it runs. */
  get source(): Source | undefined {
    return this.#runs.get(0)?.source;
  }
  /** The latest video keyframe of the first running source that has one. */
  get lastKeyframe(): Frame | undefined {
    return this.#runs.lastKeyframe;
  }
  get lastError(): Error | undefined {
    return this.#lastError;
  }
  /** The primary source's backchannel while it runs with one (a camera's ONVIF backchannel). */
  get backchannel(): Backchannel | undefined {
    const src = this.#runs.get(0)?.source;
    return src && hasBackchannel(src) ? src.backchannel : undefined;
  }
  /** The consumer talking to the camera now, and what talkers sent. */
  get talk(): { talker: Consumer | undefined; sent: number; lost: number } {
    return { talker: this.#talk.holder, ...this.#talk.counters };
  }

  /**
   * Lends the backchannel to `consumer`, attached to this stream, until it releases it or
   * closes. Throws NoBackchannelError when the running source has none, TalkBusyError while
   * another consumer talks.
   */
  startTalking(consumer: Consumer): Talk {
    if (!this.#consumers.has(consumer)) throw new Error('a talker must be attached to the stream');
    const t = this.#talk.take(consumer);
    this.#log.info({ consumer: consumer.id, codec: describeTrack({ kind: 'audio', codec: t.codec }) }, 'talker started');
    return {
      codec: t.codec,
      send: t.send,
      release: () => {
        if (this.#talk.holder === consumer) this.#log.info({ consumer: consumer.id }, 'talker stopped');
        t.release();
      },
    };
  }

  /**
   * For a consumer about to start its video (a WebRTC peer that just connected, an RTSP player
   * that just sent PLAY): the frames of the current GOP, from its keyframe up to the latest
   * frame, to send at once. From this call on the consumer also gets every live video frame,
   * which continue that GOP. Empty when nothing decodable is held: the consumer then starts at
   * the next keyframe, as without a cache.
   */
  catchUp(c: Consumer): readonly Frame[] {
    return this.#delivery.catchUp(c);
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
    const p = this.#consumers.add(consumer, () => this.detach(consumer), this.settings.startTimeout, () => {
      this.detach(consumer);
      return new StartTimeoutError(this.name, this.settings.startTimeout, this.#lastError);
    });
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#log.debug({ consumer: consumer.id, consumers: this.#consumers.size, internal: consumer.internal ?? false }, 'consumer attached');
    if (this.#state === 'idle') this.#startPrimary();
    else if (this.#state === 'live') this.#plan();
    return p;
  }

  detach(consumer: Consumer): void {
    if (!this.#consumers.remove(consumer, () => new StreamClosedError(this.name, 'consumer left before the stream started'))) return;
    this.#log.debug({ consumer: consumer.id, consumers: this.#consumers.size }, 'consumer detached');
    if (!this.#consumers.watched() && this.#holds === 0) this.#lastConsumerLeft();
    else this.#secondaries.stopUnused();
  }

  /** Where each kind of `consumer` comes from (what /api/streams and the answer tell the viewer). */
  bindingOf(consumer: Consumer): Map<Kind, SourceBinding> {
    const out = new Map<Kind, SourceBinding>();
    for (const [kind, index] of this.#consumers.get(consumer)?.from ?? []) {
      const url = this.#runs.get(index)?.source.url ?? this.#list.url(index);
      if (url !== undefined) out.set(kind, { index, url, auto: this.#list.isAuto(index) });
    }
    return out;
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
      if (this.#holds === 0 && !this.#consumers.watched()) this.#lastConsumerLeft();
    };
  }

  #lastConsumerLeft(): void {
    if (this.closed) return;
    if (this.settings.idleTimeout > 0 && this.#state === 'live') {
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        if (!this.#consumers.watched()) this.#stop();
      }, this.settings.idleTimeout);
      return;
    }
    this.#stop();
  }

  #setState(s: StreamState): void {
    if (this.#state === s) return;
    checkTransition(this.name, this.#state, s, this.#log);
    this.#state = s;
    this.#log.info({ state: s }, 'stream state');
    this.emit('state', s);
  }

  #startPrimary(): void {
    this.#setState('starting');
    this.#list.exhausted.clear();
    // A stream without sources is fed by publishers: viewers wait for one (up to start_timeout).
    if (this.sources.length === 0) {
      this.#lastError = new SourceError('no publisher is connected');
      return;
    }
    this.#startRun(0, this.#wantedByPrimary());
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
    if (old) this.#runs.end(old);
    this.#retries.cancel(0);
    this.#consumers.restartGates();
    if (this.#state !== 'live') this.#setState('starting');
    this.#startRun(0, this.#wantedByPrimary(), undefined, src);
  }

  /** What the primary is asked for: every consumer's kinds, and what transcodes of this stream read. */
  #wantedByPrimary(): MediaRequest {
    return wanted(this.#consumers.planned(), KINDS, this.#list);
  }

  #startRun(index: number, want: MediaRequest, backoff?: Backoff, pushed?: Source): void {
    const url = pushed?.url ?? this.#list.url(index)!;
    let src: Source;
    try {
      src = pushed ?? this.#maker.make(url, this.name);
    } catch (e) {
      const err = e instanceof SourceError ? e : new SourceError(errorMessage(e), true);
      if (index === 0) this.#primaryFailed(err);
      else this.#secondaries.failed(index, err, undefined);
      return;
    }
    const run = new SourceRun(index, src, backoff ?? new Backoff(this.settings.backoff, this.random), this.settings.gopCache, pushed !== undefined);
    this.#log.info({ source: maskCredentials(url), index }, 'source starting');
    this.#runs.start(run, want);
  }

  #runLive(run: SourceRun): void {
    if (run.index === 0) {
      this.#lastError = undefined;
      this.#setState('live');
      const resume = [...this.#resume];
      this.#resume.clear();
      for (const i of resume) if (!this.#runs.has(i)) this.#startRun(i, wanted(this.#consumers.planned()));
    }
    this.#plan();
    if (run.index > 0) this.#secondaries.wentLive(run);
  }

  #runEnded(run: SourceRun, err: Error): void {
    if (run.pushed && this.sources.length === 0) {
      // Nothing of ours to retry: viewers stay and continue when a publisher comes back.
      this.#log.info({ err: maskCredentials(err.message) }, 'publisher left');
      this.#lastError = err;
      for (const r of this.#runs.sorted()) this.#runs.end(r);
      this.#consumers.restartGates();
      this.#setState(this.#consumers.watched() ? 'starting' : 'idle');
      return;
    }
    if (run.index === 0) this.#primaryFailed(err, run);
    else this.#secondaries.failed(run.index, err, run);
  }

  /**
   * After any source event: binds waiting consumers to the tracks of running sources, starts the
   * next source in the list when someone wants a kind nobody provides yet, and resolves the
   * waiters that can get nothing more (source-plan.ts decides; this applies it).
   */
  #plan(): void {
    if (this.#state !== 'live') return;
    const p = plan(this.#consumers.planned(), this.#runs.sorted(), this.#list);
    for (const { consumer, from } of p.resolve) this.#consumers.resolve(consumer, from, (i) => this.#runs.get(i)?.tracks ?? []);
    if (p.start) this.#startRun(p.start.index, p.start.want);
  }

  #primaryFailed(err: Error, run?: SourceRun): void {
    const ranFor = run?.ranFor() ?? 0;
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
      for (const { consumer, reject } of this.#consumers.takeWaiters()) {
        this.detach(consumer);
        reject(err);
      }
    }
    void this.#runs.allStopped().then(() => {
      if (this.closed || this.#state !== 'stopping') return;
      if (!this.#consumers.watched()) {
        this.#backoff.reset();
        this.#setState('idle');
        return;
      }
      // Everyone re-binds and waits for a keyframe from the new connection.
      this.#consumers.restartGates();
      const ceiling = this.#backoff.ceiling;
      const attempt = this.#backoff.attempts;
      const delay = this.#backoff.next();
      this.#setState('backoff');
      this.emit('backoff', { attempt, delay, ceiling, error: err, source: 0 });
      this.#log.info({ attempt, delay, ceiling, err: maskCredentials(err.message) }, 'retrying source');
      this.#retries.set(0, delay, () => {
        if (!this.closed && this.#consumers.watched()) this.#restartPrimary();
      });
    });
  }

  /** After a reconnect the consumers keep their bindings: same kinds from the same sources. */
  #restartPrimary(): void {
    this.#setState('starting');
    this.#list.exhausted.clear();
    // Secondaries that consumers were using come back once the primary is live.
    this.#resume = this.#consumers.secondariesInUse();
    this.#startRun(0, this.#wantedByPrimary());
  }

  /** Closes every running source and forgets pending retries. */
  #closeRuns(): void {
    this.#retries.cancelAll();
    this.#runs.endAll();
  }

  /** Our own transcodes reading this stream go with what they read. */
  #closeInternal(): void {
    for (const c of this.#consumers.internal()) c.close(new StreamClosedError(this.name, 'stream stopped'));
  }

  #stop(): void {
    this.#backoff.reset();
    if (this.#runs.get(0)?.pushed) {
      // A publisher keeps pushing whether or not anyone watches; only what we started stops.
      for (const r of this.#runs.sorted()) if (!r.pushed) this.#runs.end(r);
      this.#closeInternal();
      return;
    }
    const hadRuns = this.#runs.size > 0 || this.#runs.stopping;
    this.#closeRuns();
    this.#closeInternal();
    if (!hadRuns) {
      if (this.#state !== 'stopping') this.#setState('idle');
      return;
    }
    if (this.#state === 'stopping' && !this.#consumers.watched()) {
      // Already stopping after a failure: its continuation goes to idle.
      return;
    }
    this.#setState('stopping');
    this.#log.info('last consumer left: stopping source');
    void this.#runs.allStopped().then(() => {
      if (this.closed || this.#state !== 'stopping') return;
      this.#setState('idle');
      // A consumer that came while the old source was still exiting starts a fresh one.
      if (this.#consumers.watched()) this.#startPrimary();
    });
  }

  protected onClose(): Promise<void> {
    this.#delivery.clear();
    this.#runs.close();
    for (const c of [...this.#consumers.keys()]) {
      this.detach(c);
      c.close(new StreamClosedError(this.name, 'stream closed'));
    }
    // After the detaches: the last one may have armed an idle timer.
    clearTimeout(this.#idleTimer);
    this.#closeRuns();
    // A closed stream has no transitions (stream-states.ts): no check, no event.
    this.#state = 'idle';
    return this.#runs.allStopped();
  }
}
