// go2rtc's probe (GET /api/streams?src=X&video&audio): a consumer attached for the length of one
// request, so the stream starts and its producers show the codecs they found; it leaves with the
// answer, and the stream stops again when nobody else watches.
import { randomBytes } from 'node:crypto';
import { Owned } from '../core/owned.js';
import type { Consumer, ConsumerInfo } from '../core/consumer.js';
import type { Frame, MediaRequest, Track } from '../core/media.js';
import type { Stream } from '../core/stream.js';
import { parseMediaQuery } from '../rtsp/play-url.js';
import { codecJson, sendMedias } from './go2rtc-json.js';

/** The query keys that make GET /api/streams?src= a probe, as in go2rtc. */
const PROBE_KEYS = ['video', 'audio', 'microphone'] as const;

export function isProbeQuery(rawQuery: string): boolean {
  const q = new URLSearchParams(rawQuery);
  return PROBE_KEYS.some((k) => q.has(k));
}

/** go2rtc's `video=all`: every codec, as an empty value does. */
function probeRequest(rawQuery: string): MediaRequest {
  const q = new URLSearchParams(rawQuery);
  const kept = new URLSearchParams();
  for (const k of ['video', 'audio'] as const) for (const v of q.getAll(k)) kept.append(k, v.toLowerCase() === 'all' ? '' : v);
  // Only a microphone asked for: nothing to receive from the stream, but it must still start.
  if (![...kept.keys()].length) kept.append('video', '');
  return parseMediaQuery(kept.toString());
}

export class ProbeConsumer extends Owned implements Consumer {
  readonly id = randomBytes(6).toString('base64url');
  readonly request: MediaRequest;
  readonly #microphone: boolean;
  #sent = new Map<Track, { bytes: number; packets: number }>();

  constructor(
    rawQuery: string,
    private readonly meta: { remoteAddr?: string; userAgent?: string },
  ) {
    super('ProbeConsumer');
    this.request = probeRequest(rawQuery);
    this.#microphone = new URLSearchParams(rawQuery).has('microphone');
  }

  onFrame(frame: Frame): void {
    const s = this.#sent.get(frame.track) ?? { bytes: 0, packets: 0 };
    for (const d of frame.data) s.bytes += d.length;
    s.packets++;
    this.#sent.set(frame.track, s);
  }

  /** The tracks it was bound to: senders with their codecs, as go2rtc lists them. */
  bind(tracks: readonly Track[]): void {
    for (const t of tracks) if (!this.#sent.has(t)) this.#sent.set(t, { bytes: 0, packets: 0 });
  }

  info(): ConsumerInfo {
    let bytes = 0;
    const senders = [...this.#sent].map(([t, s]) => {
      bytes += s.bytes;
      return { codec: codecJson(t.kind, t.codec), ...(s.bytes ? { bytes: s.bytes, packets: s.packets } : {}) };
    });
    return {
      type: 'probe',
      id: this.id,
      format_name: 'probe',
      protocol: 'http',
      remote_addr: this.meta.remoteAddr,
      user_agent: this.meta.userAgent,
      medias: sendMedias(this.request, this.#microphone),
      senders,
      bytes_send: bytes,
    };
  }

  protected onClose(): void {}
}

/**
 * Attaches a probe, waits for the stream's tracks (at most the stream's start_timeout), and
 * hands the stream to `answer` while the probe is still attached; the probe always leaves.
 */
export async function withProbe<T>(stream: Stream, rawQuery: string, meta: { remoteAddr?: string; userAgent?: string }, answer: () => T): Promise<T> {
  const probe = new ProbeConsumer(rawQuery, meta);
  let timer: NodeJS.Timeout | undefined;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`stream "${stream.name}" did not start within ${stream.settings.startTimeout} ms`)), stream.settings.startTimeout);
    });
    probe.bind(await Promise.race([stream.attach(probe), deadline]));
    return answer();
  } finally {
    clearTimeout(timer);
    probe.close();
  }
}
