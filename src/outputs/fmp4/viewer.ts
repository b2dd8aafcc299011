// One viewer of a shared fMP4 muxer (an MSE WebSocket, a stream.mp4 response). The muxer makes
// each sample's mdat once; the viewer writes its own small moof in front of it, with its own
// sequence numbers and a timeline that starts near 0 where it joined (Chromium waits seconds
// before playing a first fragment whose decode time is far from 0: issue 15 facts §6).
import { randomBytes } from 'node:crypto';
import { CloseReason } from '../../core/close-reason.js';
import type { ConsumerInfo } from '../../core/consumer.js';
import { Owned } from '../../core/owned.js';
import { moof } from '../../formats/mp4/fragment.js';
import type { Fmp4Sample } from './sample.js';

/** Where a viewer's bytes go. */
export interface Fmp4Sink {
  /** The muxer is ready: the answer (MSE) or the headers (HTTP) naming what comes, before any byte. */
  start(mime: string): void;
  /** One unit of bytes (the init segment, or a moof and its mdat), written without copying. */
  write(parts: readonly Buffer[]): void;
  /** Bytes written and not yet taken by the peer. */
  buffered(): number;
}

/**
 * How much a viewer may have queued before it is dropped. Above the muxer's GOP bound (written at
 * once to a viewer that joins) with room for a second one; the mdat bytes queued are shared.
 */
export const MAX_VIEWER_BUFFER = 24 * 1024 * 1024;

export interface ViewerMeta {
  remoteAddr?: string;
  userAgent?: string;
  /** Defaults to MAX_VIEWER_BUFFER. */
  maxBuffered?: number;
}

export type ViewerKind = 'mse' | 'mp4' | 'hls';
const FORMAT_NAME: Record<ViewerKind, string> = { mse: 'mse/fmp4', mp4: 'mp4', hls: 'hls/fmp4' };
const PROTOCOL: Record<ViewerKind, string> = { mse: 'ws', mp4: 'http', hls: 'http' };

export class Fmp4Viewer extends Owned {
  readonly id = randomBytes(6).toString('base64url');
  #answered = false;
  #begun = false;
  #sequence = 1;
  /** Per track id: the decode time (in its timescale) that is 0 for this viewer. */
  #base = new Map<number, number>();
  #baseSeconds = 0;
  #bytes = 0;
  #max: number;

  constructor(
    readonly kind: ViewerKind,
    private readonly sink: Fmp4Sink,
    private readonly meta: ViewerMeta = {},
  ) {
    super('Fmp4Viewer');
    this.#max = meta.maxBuffered ?? MAX_VIEWER_BUFFER;
  }

  get answered(): boolean {
    return this.#answered;
  }

  get begun(): boolean {
    return this.#begun;
  }

  answer(mime: string): void {
    if (this.closed || this.#answered) return;
    this.#answered = true;
    this.sink.start(mime);
  }

  /** Starts at a sample where a decoder can start (`atSeconds` on the muxer's timeline). */
  begin(init: Buffer, atSeconds: number): void {
    if (this.closed || this.#begun) return;
    this.#begun = true;
    this.#baseSeconds = atSeconds;
    this.#out([init]);
  }

  /** A new init segment (the source changed its parameter sets): MSE takes it between fragments. */
  reinit(init: Buffer): void {
    if (this.#begun && !this.closed) this.#out([init]);
  }

  send(s: Fmp4Sample): void {
    if (!this.#begun || this.closed) return;
    let base = this.#base.get(s.trackId);
    if (base === undefined) this.#base.set(s.trackId, (base = Math.round(this.#baseSeconds * s.timescale)));
    const decodeTime = s.time - base;
    // Audio from just before the keyframe this viewer started at: not on its timeline.
    if (decodeTime < 0) return;
    const head = moof({ sequence: this.#sequence++, trackId: s.trackId, decodeTime, duration: s.duration, size: s.mdat.length - 8, flags: s.flags });
    this.#out([head, s.mdat]);
  }

  #out(parts: readonly Buffer[]): void {
    for (const p of parts) this.#bytes += p.length;
    this.sink.write(parts);
    if (this.sink.buffered() > this.#max) this.close(new CloseReason('slow_consumer', `viewer cannot keep up (more than ${this.#max} bytes queued)`));
  }

  info(): ConsumerInfo {
    return {
      type: this.kind,
      format_name: FORMAT_NAME[this.kind],
      protocol: PROTOCOL[this.kind],
      id: this.id,
      remote_addr: this.meta.remoteAddr,
      user_agent: this.meta.userAgent,
      bytes_send: this.#bytes,
    };
  }

  protected onClose(): void {}
}
