// go2rtc's preload: a consumer that watches nothing but keeps a stream's source running, for
// cameras that are slow to wake. It retries on its own when the stream cannot start.
import { randomBytes } from 'node:crypto';
import { Owned } from '../core/owned.js';
import { Backoff } from '../core/backoff.js';
import { errorMessage } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Consumer, ConsumerInfo } from '../core/consumer.js';
import type { Frame, MediaRequest, Track } from '../core/media.js';
import { codecJson, sendMedias } from '../api/go2rtc-json.js';
import type { Stream } from '../core/stream.js';
import { parseMediaQuery } from '../rtsp/play-url.js';

/** The media keys go2rtc keeps in a preload query, in the order camrelay writes them. */
const PRELOAD_KEYS = ['video', 'audio', 'microphone'] as const;

/**
 * go2rtc's preload query normalisation: only `video`, `audio` and `microphone` stay; nothing left
 * means `video&audio`. Written in one canonical spelling (keys in that order, `key` alone when it
 * has no value, values' commas kept) rather than go2rtc's sorted `audio=&video=`: go2rtc itself
 * stores `video&audio` for a bare PUT and `audio=&video=` for `?video&audio`, two spellings of one
 * meaning; here a query read back is the same string put again (stable), and it is the form of
 * go2rtc's docs and of camrelay's RTSP URLs.
 */
export function normalisePreloadQuery(query: string): string {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  const parts: string[] = [];
  for (const key of PRELOAD_KEYS) {
    for (const value of params.getAll(key)) parts.push(value === '' ? key : `${key}=${encodeURIComponent(value).replace(/%2C/gi, ',')}`);
  }
  return parts.length > 0 ? parts.join('&') : 'video&audio';
}

class PreloadConsumer extends Owned implements Consumer {
  readonly id = randomBytes(6).toString('base64url');
  #bytes = 0;
  /** Per track the stream gave it: what go2rtc lists as the consumer's senders. */
  #sent = new Map<Track, { bytes: number; packets: number }>();
  constructor(
    readonly request: MediaRequest,
    private readonly microphone: boolean,
  ) {
    super('PreloadConsumer');
  }
  onFrame(frame: Frame): void {
    let n = 0;
    for (const d of frame.data) n += d.length;
    this.#bytes += n;
    const s = this.#sent.get(frame.track) ?? { bytes: 0, packets: 0 };
    s.bytes += n;
    s.packets++;
    this.#sent.set(frame.track, s);
  }
  info(): ConsumerInfo {
    const senders = [...this.#sent].map(([t, s]) => ({ codec: codecJson(t.kind, t.codec), bytes: s.bytes, packets: s.packets }));
    return {
      type: 'preload',
      id: this.id,
      format_name: 'preload',
      medias: sendMedias(this.request, this.microphone),
      ...(senders.length > 0 ? { senders } : {}),
      bytes_send: this.#bytes,
    };
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

  /** go2rtc's preload entry: the consumer's JSON (what it asked for, what it got) and the query. */
  view(): { consumer: ConsumerInfo; query: string } {
    const consumer = this.#consumer && !this.#consumer.closed ? this.#consumer.info() : { type: 'preload', id: '', format_name: 'preload', medias: sendMedias(parseMediaQuery(this.query)) };
    return { consumer, query: this.query };
  }

  #attach(): void {
    if (this.closed || this.stream.closed) return;
    const c = new PreloadConsumer(parseMediaQuery(this.query), new URLSearchParams(this.query).has('microphone'));
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
    const p = new Preload(stream, normalisePreloadQuery(query));
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

  /** go2rtc's GET /api/preload: name → {consumer, query} (python-go2rtc-client reads `query`). */
  list(): Record<string, { consumer: ConsumerInfo; query: string }> {
    return Object.fromEntries([...this.#byName].map(([n, p]) => [n, p.view()]));
  }

  protected onClose(): void {
    for (const name of [...this.#byName.keys()]) this.delete(name);
  }
}
