// go2rtc's preload: a consumer that watches nothing but keeps a stream's source running, for
// cameras that are slow to wake. It retries on its own when the stream cannot start.
import { randomBytes } from 'node:crypto';
import { Owned } from '../core/owned.js';
import { Backoff } from '../core/backoff.js';
import { errorMessage } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Consumer, ConsumerInfo } from '../core/consumer.js';
import type { MediaRequest } from '../core/media.js';
import type { Stream } from '../core/stream.js';
import { parseMediaQuery } from '../rtsp/play-url.js';

class PreloadConsumer extends Owned implements Consumer {
  readonly id = randomBytes(6).toString('base64url');
  constructor(readonly request: MediaRequest) {
    super('PreloadConsumer');
  }
  onFrame(): void {}
  info(): ConsumerInfo {
    return { type: 'preload', id: this.id };
  }
  protected onClose(): void {}
}

/** One preloaded stream: re-attaches after a failed start, with backoff. */
class Preload extends Owned {
  #consumer: PreloadConsumer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #backoff: Backoff;

  constructor(
    readonly stream: Stream,
    readonly query: string,
  ) {
    super('Preload');
    this.#backoff = new Backoff(stream.settings.backoff);
    this.#attach();
  }

  #attach(): void {
    if (this.closed || this.stream.closed) return;
    const c = new PreloadConsumer(parseMediaQuery(this.query));
    this.#consumer = c;
    this.stream.attach(c).then(
      () => this.#backoff.reset(),
      (e: unknown) => {
        c.close();
        if (this.closed) return;
        const delay = this.#backoff.next();
        log.warn({ stream: this.stream.name, err: errorMessage(e), delay }, 'preload: stream did not start; trying again');
        this.#timer = setTimeout(() => this.#attach(), delay);
      },
    );
  }

  protected onClose(): void {
    clearTimeout(this.#timer);
    this.#consumer?.close();
  }
}

/** The preloads by stream name; closing it releases them all. */
export class PreloadTable extends Owned {
  #byName = new Map<string, Preload>();

  constructor() {
    super('PreloadTable');
  }

  /** Replaces any preload of that stream (the old consumer leaves before the new one counts). */
  set(stream: Stream, query: string): void {
    this.delete(stream.name);
    const p = new Preload(stream, query);
    this.#byName.set(stream.name, p);
    // A stream removed from the registry takes its preload with it.
    const drop = () => this.delete(stream.name);
    stream.once('close', drop);
    p.once('close', () => stream.off('close', drop));
  }

  delete(name: string): boolean {
    const p = this.#byName.get(name);
    if (!p) return false;
    this.#byName.delete(name);
    p.close();
    return true;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  list(): Record<string, string> {
    return Object.fromEntries([...this.#byName].map(([n, p]) => [n, p.query]));
  }

  protected onClose(): void {
    for (const name of [...this.#byName.keys()]) this.delete(name);
  }
}
