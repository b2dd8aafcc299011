import { Owned } from './owned.js';
import { Backoff, type BackoffSettings } from './backoff.js';
import { SourceError, StartTimeoutError, StreamClosedError, errorMessage } from './errors.js';
import { log, maskCredentials, type Logger } from './log.js';
import type { Consumer } from './consumer.js';
import type { Frame, Kind, MediaRequest, Track } from './media.js';
import type { Source, SourceFactory } from './source.js';

export interface StreamSettings {
  /** ms to keep the source after the last consumer left; 0 stops it at once. */
  idleTimeout: number;
  /** ms a consumer waits for the source to go live before it gets an error. */
  startTimeout: number;
  backoff: BackoffSettings;
}

export type StreamState = 'idle' | 'starting' | 'live' | 'backoff' | 'stopping';

interface Waiter {
  resolve: (tracks: Track[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Attachment {
  onClose: () => void;
  /** Kinds this consumer takes, fixed when it went live. */
  kinds: Set<Kind>;
  /** Video is held back until the consumer's first keyframe. */
  awaitingKeyframe: boolean;
  waiter?: Waiter;
}

export interface BackoffEvent {
  attempt: number;
  delay: number;
  ceiling: number;
  error: Error;
}

/**
 * One named stream: the state machine of DESIGN.md (idle → starting → live → backoff → stopping
 * → idle). The first consumer starts the source, the last one leaving stops it, failures retry
 * with jittered backoff only while consumers remain.
 * Events: 'state' (StreamState), 'backoff' (BackoffEvent), 'source' (Source) when one starts.
 */
export class Stream extends Owned {
  #state: StreamState = 'idle';
  #source: Source | undefined;
  #abort: AbortController | undefined;
  #tracks: Track[] = [];
  #consumers = new Map<Consumer, Attachment>();
  #backoff: Backoff;
  #retryTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #liveSince = 0;
  #lastError: Error | undefined;
  /** The source being stopped, until it is really gone: close() waits for it too. */
  #stopping: Promise<void> = Promise.resolve();
  #log: Logger;

  constructor(
    readonly name: string,
    public sources: string[],
    public settings: StreamSettings,
    private readonly makeSource: SourceFactory,
    random?: () => number,
  ) {
    super('Stream');
    this.#backoff = new Backoff(settings.backoff, random);
    this.#log = log.child({ stream: name });
  }

  get state(): StreamState {
    return this.#state;
  }
  get tracks(): readonly Track[] {
    return this.#tracks;
  }
  get consumers(): Consumer[] {
    return [...this.#consumers.keys()];
  }
  get source(): Source | undefined {
    return this.#source;
  }
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /**
   * Adds a consumer and resolves with the stream's tracks once live. Rejects (and detaches the
   * consumer) on start timeout or a permanent source error. The consumer is dropped when it
   * emits 'close'.
   */
  attach(consumer: Consumer): Promise<Track[]> {
    if (this.closed) return Promise.reject(new StreamClosedError(this.name, 'stream was removed'));
    if (consumer.closed) return Promise.reject(new Error('consumer already closed'));
    if (this.#consumers.has(consumer)) throw new Error('consumer attached twice');
    const a: Attachment = { onClose: () => this.detach(consumer), kinds: new Set(), awaitingKeyframe: true };
    consumer.once('close', a.onClose);
    this.#consumers.set(consumer, a);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#log.debug({ consumer: consumer.id, consumers: this.#consumers.size }, 'consumer attached');

    if (this.#state === 'live') {
      this.#bind(a, consumer);
      return Promise.resolve(this.#tracks);
    }
    const p = new Promise<Track[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        a.waiter = undefined;
        this.detach(consumer);
        reject(new StartTimeoutError(this.name, this.settings.startTimeout, this.#lastError));
      }, this.settings.startTimeout);
      a.waiter = { resolve, reject, timer };
    });
    if (this.#state === 'idle') this.#start();
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
    if (this.#consumers.size === 0) this.#lastConsumerLeft();
  }

  #lastConsumerLeft(): void {
    if (this.closed) return;
    if (this.settings.idleTimeout > 0 && this.#state === 'live') {
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        if (this.#consumers.size === 0) this.#stop();
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

  #start(): void {
    const url = this.sources[0];
    this.#setState('starting');
    if (url === undefined) {
      this.#failed(new SourceError(`stream "${this.name}" has no source`, true));
      return;
    }
    let src: Source;
    try {
      src = this.makeSource(url, this.name);
    } catch (e) {
      this.#failed(e instanceof SourceError ? e : new SourceError(errorMessage(e), true));
      return;
    }
    const ac = new AbortController();
    this.#source = src;
    this.#abort = ac;
    this.#log.info({ source: maskCredentials(url) }, 'source starting');
    src.on('close', (err?: Error) => {
      if (this.#source !== src) return;
      this.#sourceEnded(src, err ?? new SourceError('source ended'));
    });
    this.emit('source', src);
    src.start(ac.signal, this.#wanted()).then(
      (tracks) => {
        if (this.#source !== src || ac.signal.aborted) return;
        this.#live(src, tracks);
      },
      (err: unknown) => {
        if (this.#source !== src) return;
        // Closing it with the error runs the 'close' listener above, which handles the failure once.
        src.close(err instanceof Error ? err : new SourceError(String(err)));
      },
    );
  }

  /** The union of what the attached consumers accept, per kind. */
  #wanted(): MediaRequest {
    const want: MediaRequest = {};
    for (const c of this.#consumers.keys()) {
      for (const kind of ['video', 'audio'] as const) {
        const codecs = c.request[kind];
        if (!codecs) continue;
        want[kind] = [...new Set([...(want[kind] ?? []), ...codecs])];
      }
    }
    return want;
  }

  #live(src: Source, tracks: Track[]): void {
    this.#tracks = tracks;
    this.#liveSince = Date.now();
    this.#lastError = undefined;
    src.on('frame', (f: Frame) => {
      if (this.#source === src) this.#deliver(f);
    });
    this.#setState('live');
    for (const [c, a] of this.#consumers) {
      this.#bind(a, c);
      if (a.waiter) {
        clearTimeout(a.waiter.timer);
        const w = a.waiter;
        a.waiter = undefined;
        w.resolve(tracks);
      }
    }
  }

  #bind(a: Attachment, c: Consumer): void {
    a.kinds = new Set(this.#tracks.filter((t) => c.request[t.kind]?.includes(t.codec.name)).map((t) => t.kind));
    a.awaitingKeyframe = a.kinds.has('video');
  }

  #deliver(f: Frame): void {
    for (const [c, a] of this.#consumers) {
      if (a.waiter || !a.kinds.has(f.track.kind)) continue;
      if (f.track.kind === 'video' && a.awaitingKeyframe) {
        if (!f.keyframe) continue;
        a.awaitingKeyframe = false;
      }
      try {
        c.onFrame(f);
      } catch (e) {
        this.#log.error({ consumer: c.id, err: errorMessage(e) }, 'consumer failed on a frame; closing it');
        c.close(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  #sourceEnded(src: Source, err: Error): void {
    this.#source = undefined;
    this.#abort = undefined;
    this.#failed(err, src);
  }

  #failed(err: Error, src?: Source): void {
    const ranFor = this.#state === 'live' ? Date.now() - this.#liveSince : 0;
    this.#lastError = err;
    this.#log.warn({ err: maskCredentials(err.message), ranFor }, 'source failed');
    this.#backoff.ranFor(ranFor);
    this.#setState('stopping');
    if (err instanceof SourceError && err.permanent) {
      // Waiting viewers learn at once: retrying a missing file until start_timeout helps nobody.
      for (const [c, a] of this.#consumers) {
        if (!a.waiter) continue;
        const w = a.waiter;
        a.waiter = undefined;
        clearTimeout(w.timer);
        this.detach(c);
        w.reject(err);
      }
    }
    const gone = src ? src.done : Promise.resolve();
    this.#stopping = gone;
    void gone.then(() => {
      if (this.closed || this.#state !== 'stopping') return;
      if (this.#consumers.size === 0) {
        this.#backoff.reset();
        this.#setState('idle');
        return;
      }
      const ceiling = this.#backoff.ceiling;
      const attempt = this.#backoff.attempts;
      const delay = this.#backoff.next();
      this.#setState('backoff');
      this.emit('backoff', { attempt, delay, ceiling, error: err } satisfies BackoffEvent);
      this.#log.info({ attempt, delay, ceiling, err: maskCredentials(err.message) }, 'retrying source');
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        if (!this.closed && this.#consumers.size > 0) this.#start();
      }, delay);
    });
  }

  #stop(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const src = this.#source;
    this.#source = undefined;
    this.#abort?.abort();
    this.#abort = undefined;
    this.#tracks = [];
    this.#backoff.reset();
    if (!src) {
      if (this.#state !== 'stopping') this.#setState('idle');
      return;
    }
    this.#setState('stopping');
    this.#log.info('last consumer left: stopping source');
    src.close();
    this.#stopping = src.done;
    void src.done.then(() => {
      if (this.closed || this.#state !== 'stopping') return;
      this.#setState('idle');
      // A consumer that came while the old source was still exiting starts a fresh one.
      if (this.#consumers.size > 0) this.#start();
    });
  }

  protected onClose(): Promise<void> {
    for (const c of [...this.#consumers.keys()]) {
      this.detach(c);
      c.close(new StreamClosedError(this.name, 'stream closed'));
    }
    // After the detaches: the last one may have armed an idle timer.
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#idleTimer);
    const src = this.#source;
    this.#source = undefined;
    this.#abort?.abort();
    src?.close();
    this.#state = 'idle';
    return Promise.all([src?.done, this.#stopping]).then(() => undefined);
  }
}
