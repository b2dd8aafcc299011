// Every HLS session of one camrelay, by id, bounded per stream and in all: HTTP viewers that never
// say goodbye must not be able to pile up sessions (each holds a muxer viewer and its segments).
import type { MediaRequest } from '../../core/media.js';
import type { Stream } from '../../core/stream.js';
import type { ViewerMeta } from '../fmp4/viewer.js';
import { HlsSession } from './session.js';

/** Sessions of one stream at once; more are refused (503) and counted. */
export const HLS_MAX_SESSIONS_PER_STREAM = 16;
/** Sessions of all streams at once. */
export const HLS_MAX_SESSIONS = 64;

export class HlsSessions {
  #byId = new Map<string, HlsSession>();
  /** Sessions refused for a bound, since start. */
  refused = 0;

  constructor(
    readonly maxPerStream = HLS_MAX_SESSIONS_PER_STREAM,
    readonly max = HLS_MAX_SESSIONS,
    private readonly timeoutMs?: number,
  ) {}

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): HlsSession | undefined {
    return this.#byId.get(id);
  }

  /** A new session of `stream`, started; undefined (counted in `refused`) over a bound. */
  open(stream: Stream, request: MediaRequest, meta: ViewerMeta): HlsSession | undefined {
    let ofStream = 0;
    for (const s of this.#byId.values()) if (s.stream === stream) ofStream++;
    if (this.#byId.size >= this.max || ofStream >= this.maxPerStream) {
      this.refused++;
      return undefined;
    }
    const s = new HlsSession(stream, request, meta, this.timeoutMs);
    this.#byId.set(s.id, s);
    s.once('close', () => this.#byId.delete(s.id));
    s.start();
    return s;
  }

  close(): void {
    for (const s of [...this.#byId.values()]) s.close();
  }
}
