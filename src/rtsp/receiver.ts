import type { Depacketizer } from '../codecs/format.js';
import { codecFormat, formatByEncoding } from '../codecs/table.js';
import type { Logger } from '../core/log.js';
import type { Frame, Track } from '../core/media.js';
import { DepacketizeError, RtpPacketError } from '../rtp/errors.js';
import { parseRtp, type RtpPacket } from '../rtp/packet.js';
import { forPayloadType, type SdpMedia } from './sdp.js';

// From an SDP media section to a Track, and from that track's RTP packets to Frames; what each
// codec needs for either comes from the codec table (src/codecs/table.ts).

/** Why a media section cannot become a track, or undefined when it can. */
export function unsupportedReason(m: SdpMedia): string | undefined {
  if (m.payloadTypes.length === 0) return `${m.kind} media with no RTP payload type (formats ${m.formats.join(' ').slice(0, 60)})`;
  const f = formatByEncoding(m.codec);
  if (!f) return `codec ${m.codec ?? `payload type ${m.payloadType}`} is not carried`;
  if (m.kind !== f.kind) return `${m.codec} in a ${m.kind} section`;
  return f.unsupported?.(m);
}

/**
 * Each payload type of a media section described on its own, the first listed first: a camera
 * may list several codecs on one m= line and the caller picks one it can carry.
 */
export function formatsOf(m: SdpMedia): SdpMedia[] {
  return m.payloadTypes.length === 0 ? [m] : m.payloadTypes.map((pt) => forPayloadType(m, pt));
}

/** The Track a media section describes, or undefined for a codec camrelay does not carry. */
export function trackFromMedia(m: SdpMedia): Track | undefined {
  if (unsupportedReason(m) !== undefined) return undefined;
  return formatByEncoding(m.codec)!.track(m);
}

/** Logs dropped packets without flooding: the first of each kind at once, then a count every 10 s. */
class DropLog {
  #counts = new Map<string, number>();
  #lastReport = 0;

  constructor(private readonly log: Logger) {}

  note(err: RtpPacketError | DepacketizeError): void {
    const first = !this.#counts.has(err.code);
    this.#counts.set(err.code, (this.#counts.get(err.code) ?? 0) + 1);
    const now = Date.now();
    if (first) {
      this.log.warn({ err: err.message, errName: err.name }, 'dropped RTP data');
      this.#lastReport = now;
    } else if (now - this.#lastReport >= 10_000) {
      this.log.warn({ dropped: Object.fromEntries(this.#counts), last: err.message }, 'dropped RTP data (counts since start)');
      this.#lastReport = now;
    }
  }
}

/**
 * One received track: parses RTP, depacketizes, and hands Frames to `onFrame`. Bad packets are
 * logged and dropped here; nothing malformed throws out of push().
 */
export class RtpReceiver {
  #depacketizer: Depacketizer;
  #drops: DropLog;
  #otherPayloadTypes = new Set<number>();
  #warnedNoParams = false;

  constructor(
    readonly track: Track,
    private readonly payloadType: number,
    onFrame: (f: Frame) => void,
    private readonly log: Logger,
  ) {
    this.#drops = new DropLog(log);
    const format = codecFormat(track.codec.name);
    if (!format) throw new Error(`no codec table entry for ${track.codec.name}`);
    const sets = format.parameterSets;
    const params = sets ? (track.params ??= {}) : undefined;
    this.#depacketizer = format.depacketizer(track, (u) => {
      let data = u.data;
      if (sets && params) {
        // Parameter sets go in front of keyframes here, as frames enter a stream: every output
        // (snapshots too) gets keyframes a decoder can start at. Keeps track.params current.
        data = sets.update(data, params);
        if (u.keyframe && sets.missing(params) && !this.#warnedNoParams) {
          this.#warnedNoParams = true;
          log.warn(`${track.codec.name} keyframe without known parameter sets: late joiners cannot decode it`);
        }
      }
      onFrame({ track, timestamp: u.timestamp, keyframe: u.keyframe, data });
    });
  }

  push(buf: Buffer): void {
    let pkt: RtpPacket;
    try {
      pkt = parseRtp(buf);
    } catch (e) {
      if (e instanceof RtpPacketError) return this.#drops.note(e);
      throw e;
    }
    if (pkt.payloadType !== this.payloadType) {
      // e.g. comfort noise (PT 13) next to G.711: not this codec, so not a frame.
      if (!this.#otherPayloadTypes.has(pkt.payloadType)) {
        this.#otherPayloadTypes.add(pkt.payloadType);
        this.log.info({ payloadType: pkt.payloadType, expected: this.payloadType }, 'ignoring RTP with another payload type');
      }
      return;
    }
    try {
      this.#depacketizer.push(pkt);
    } catch (e) {
      if (e instanceof DepacketizeError) return this.#drops.note(e);
      throw e;
    }
  }
}
