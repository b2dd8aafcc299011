// What a WebRTC peer receives on one m-line: the viewer's microphone (two-way audio, issue 18).
// Both backends hand their decrypted RTP here: node-datachannel as the raw packet (parsed with
// rtp/packet.ts), werift already parsed. Each packet is handled at once and given to the listeners
// of 'rtp' synchronously: nothing is queued here, so what a viewer sends costs bounded work per
// packet. A packet of another payload type than the one answered is dropped and counted, as is
// one that does not parse; neither throws, and both are logged at debug level (throttled).
import { performance } from 'node:perf_hooks';
import { Owned } from '../../core/owned.js';
import { log } from '../../core/log.js';
import { errorMessage } from '../../core/errors.js';
import { parseRtp } from '../../rtp/packet.js';
import type { SendCodec } from './backend.js';

/** One received RTP packet, decrypted, padding removed. `payload` may be kept: nothing reuses it. */
export interface RtpIn {
  payloadType: number;
  sequenceNumber: number;
  /** Raw 32-bit RTP timestamp, in the codec's clock. */
  timestamp: number;
  ssrc: number;
  marker: boolean;
  payload: Buffer;
}

export interface RecvTrackStats {
  /** Packets given to 'rtp' listeners. */
  packets: number;
  /** Their payload bytes. */
  bytes: number;
  /** Dropped: a payload type other than the answered one. */
  wrongPayloadType: number;
  /** Dropped: not RTP (too short, bad version, bad padding or extension). */
  malformed: number;
}

export interface RecvTrackEvents {
  /** One packet of the answered payload type, in arrival order (no jitter buffer, no reordering). */
  rtp: [packet: RtpIn];
}

/**
 * The receiving half of one answered m-line. Owned by its peer, which closes it first in its own
 * close(); 'close' is emitted once and no 'rtp' after it. Counted as "WebRtcRecvTrack".
 */
export interface RecvTrack extends Owned<RecvTrackEvents> {
  readonly mid: string;
  readonly kind: 'audio';
  /** The answered codec: packets of any other payload type are dropped. */
  readonly codec: Readonly<SendCodec>;
  readonly stats: Readonly<RecvTrackStats>;
}

/** At most one debug line per track and this interval about dropped packets. */
const DROP_LOG_MS = 10_000;

/** The one implementation, fed by either backend. */
export class RecvRtpTrack extends Owned<RecvTrackEvents> implements RecvTrack {
  readonly kind = 'audio' as const;
  readonly codec: Readonly<SendCodec>;
  readonly #stats: RecvTrackStats = { packets: 0, bytes: 0, wrongPayloadType: 0, malformed: 0 };
  #lastDropLog = -Infinity;
  #onClose: (() => void) | undefined;

  constructor(
    readonly mid: string,
    codec: SendCodec,
    /** Called once at close: the backend stops feeding the track (unsubscribes). */
    onClose?: () => void,
  ) {
    super('WebRtcRecvTrack');
    this.codec = Object.freeze({ ...codec, ...(codec.fmtp && { fmtp: Object.freeze({ ...codec.fmtp }) }) });
    this.#onClose = onClose;
  }

  get stats(): Readonly<RecvTrackStats> {
    return { ...this.#stats };
  }

  /** A raw, decrypted RTP packet (node-datachannel). Never throws. */
  receiveRaw(buf: Buffer): void {
    if (this.closed) return;
    let p: RtpIn;
    try {
      p = parseRtp(buf);
    } catch (e) {
      this.#stats.malformed++;
      this.#dropped('malformed', { bytes: buf.length, err: errorMessage(e) });
      return;
    }
    this.receive(p);
  }

  /** A parsed packet (werift; receiveRaw). Never throws: listeners are isolated by the emitter. */
  receive(p: RtpIn): void {
    if (this.closed) return;
    if (p.payloadType !== this.codec.payloadType) {
      this.#stats.wrongPayloadType++;
      this.#dropped('wrong payload type', { payloadType: p.payloadType });
      return;
    }
    this.#stats.packets++;
    this.#stats.bytes += p.payload.length;
    this.emit('rtp', p);
  }

  #dropped(why: string, fields: Record<string, unknown>): void {
    const now = performance.now();
    if (now - this.#lastDropLog < DROP_LOG_MS) return;
    this.#lastDropLog = now;
    log.debug({ ...fields, mid: this.mid, expected: this.codec.payloadType, wrongPayloadType: this.#stats.wrongPayloadType, malformed: this.#stats.malformed }, `webrtc: received RTP dropped (${why})`);
  }

  protected onClose(): void {
    const stop = this.#onClose;
    this.#onClose = undefined;
    stop?.();
    this.removeAllListeners('rtp');
  }
}
