// One HLS viewer: a session id that its playlist, init and segment requests name, over one viewer
// of the stream's shared fMP4 muxer whose bytes are cut into segments (segmenter.ts). HTTP has no
// close: a session that no request names for HLS_SESSION_TIMEOUT_MS ends, and with it its share
// of the muxer (the last viewer's leaving stops the source, as for every consumer).
import { randomInt } from 'node:crypto';
import { CloseReason } from '../../core/close-reason.js';
import type { MediaRequest } from '../../core/media.js';
import { Owned } from '../../core/owned.js';
import type { Stream } from '../../core/stream.js';
import { watchFmp4 } from '../fmp4/muxers.js';
import { Fmp4Viewer, type ViewerMeta } from '../fmp4/viewer.js';
import { Segmenter, type Segment } from './segmenter.js';

/**
 * A session not asked for anything (playlist, init or segment) for this long ends. go2rtc's is
 * 5 s, renewed by segment requests only; we renew on every request of the session, so a player
 * still waiting for its first segment (a camera starting, a long first GOP) is not cut, and 5 s is
 * still more than two playlist reloads of a player (it reloads every target duration, 1-2 s).
 */
export const HLS_SESSION_TIMEOUT_MS = 5000;
/** A segment ends at the first keyframe at least this long after its start (the issue: about 1 s or one GOP). */
export const HLS_TARGET_SECONDS = 1;
/** Segments listed in the media playlist (a live sliding window). */
export const HLS_PLAYLIST_SEGMENTS = 4;
/** Segments kept per session: the window and two more for a player that read an older playlist. */
export const HLS_KEPT_SEGMENTS = 6;

const ID_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
/**
 * go2rtc's alphabet (0-9a-zA-Z) but 16 characters instead of its 8: the id is all that stands
 * between a session and anyone who can reach the API, and players do not care about its length.
 */
function sessionId(): string {
  let id = '';
  for (let i = 0; i < 16; i++) id += ID_CHARS[randomInt(ID_CHARS.length)];
  return id;
}

export class HlsSession extends Owned {
  readonly id = sessionId();
  readonly viewer: Fmp4Viewer;
  readonly segmenter = new Segmenter({ targetSeconds: HLS_TARGET_SECONDS, keep: HLS_KEPT_SEGMENTS });
  /** The newest segment a playlist answer listed (-1: none yet): a reload waits for a newer one. */
  listed = -1;
  #mime: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Requests waiting for the session to change (an answer, a segment, its close). */
  #waiters = new Set<() => void>();

  constructor(
    readonly stream: Stream,
    private readonly request: MediaRequest,
    meta: ViewerMeta,
    private readonly timeoutMs = HLS_SESSION_TIMEOUT_MS,
  ) {
    super('HlsSession');
    this.viewer = new Fmp4Viewer(
      'hls',
      {
        start: (mime) => {
          this.#mime = mime;
          // Its clock starts with the answer: until then stream.m3u8's request holds it.
          this.touch();
          this.#wake();
        },
        write: (parts) => {
          if (this.segmenter.write(parts) || this.segmenter.init()) this.#wake();
        },
        // What the session holds counts as queued: the viewer is dropped if that outgrows its bound.
        buffered: () => this.segmenter.bytes,
      },
      meta,
    );
    this.viewer.once('close', (reason?: Error) => this.close(reason));
  }

  /** Joins the stream's muxer; the answer (mime) follows when its tracks are known. */
  start(): void {
    watchFmp4(this.stream, this.request, this.viewer);
  }

  /** The MSE type of what the session carries, once the muxer has answered. */
  get mime(): string | undefined {
    return this.#mime;
  }

  /** A request named the session: it lives HLS_SESSION_TIMEOUT_MS from now (or from its last waiting request's end). */
  touch(): void {
    if (this.closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // A request still waiting (for a long GOP's first segment) is the player being there.
      if (this.#waiters.size > 0) this.touch();
      else this.close(new CloseReason('disconnect_timeout', `no HLS request for ${this.timeoutMs} ms`));
    }, this.timeoutMs);
  }

  /** The finished segment `seq`, if it is still kept. */
  segment(seq: number): Segment | undefined {
    return this.segmenter.segments.find((s) => s.seq === seq);
  }

  /**
   * Resolves once `ready()` holds, the session closed, `ms` passed or `gone` fired (the request
   * hung up). The caller looks at the session again afterwards.
   */
  wait(ready: () => boolean, ms: number, gone?: (cb: () => void) => void): Promise<void> {
    if (ready() || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!ready() && !this.closed) return;
        done();
      };
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(check);
      gone?.(done);
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  protected onClose(reason?: Error): void {
    clearTimeout(this.#timer);
    this.viewer.close(reason ?? new CloseReason('client'));
    this.#wake();
  }
}
