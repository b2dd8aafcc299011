import { findParams, withParameterSets } from '../codecs/h264.js';
import type { Logger } from '../core/log.js';
import type { CodecName, Frame, Track } from '../core/media.js';
import { AudioDepacketizer } from '../rtp/audio-depacketizer.js';
import { DepacketizeError, RtpPacketError } from '../rtp/errors.js';
import { H264Depacketizer } from '../rtp/h264-depacketizer.js';
import { parseRtp, type RtpPacket } from '../rtp/packet.js';
import type { SdpMedia } from './sdp.js';

// From an SDP media section to a Track, and from that track's RTP packets to Frames.

const SUPPORTED: Record<string, { name: CodecName; kind: 'video' | 'audio' }> = {
  H264: { name: 'H264', kind: 'video' },
  OPUS: { name: 'OPUS', kind: 'audio' },
  PCMA: { name: 'PCMA', kind: 'audio' },
  PCMU: { name: 'PCMU', kind: 'audio' },
};

/** The Track a media section describes, or undefined for a codec camrelay does not carry. */
export function trackFromMedia(m: SdpMedia): Track | undefined {
  const c = m.codec ? SUPPORTED[m.codec] : undefined;
  if (!c || m.kind !== c.kind) return undefined;
  switch (c.name) {
    case 'H264': {
      const params = findParams(m.sprop ?? []);
      return { kind: 'video', codec: { name: 'H264', clockRate: m.clockRate ?? 90000, fmtp: m.fmtp }, params };
    }
    case 'OPUS':
      // RFC 7587 6.1: always written as opus/48000/2, whatever the actual channel count.
      return { kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2, fmtp: m.fmtp } };
    default:
      return { kind: 'audio', codec: { name: c.name, clockRate: m.clockRate ?? 8000, channels: m.channels ?? 1, fmtp: m.fmtp } };
  }
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
  #depacketize: (pkt: RtpPacket) => void;
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
    if (track.codec.name === 'H264') {
      const params = (track.params ??= {});
      const d = new H264Depacketizer((au) => {
        // Keeps track.params current and puts SPS/PPS in front of every IDR for late joiners.
        const data = withParameterSets(au.nals, params);
        if (au.keyframe && (!params.sps || !params.pps) && !this.#warnedNoParams) {
          this.#warnedNoParams = true;
          log.warn('H.264 keyframe without known SPS/PPS: late joiners cannot decode it');
        }
        onFrame({ track, timestamp: au.timestamp, keyframe: au.keyframe, data });
      });
      this.#depacketize = (pkt) => d.push(pkt);
    } else {
      const d = new AudioDepacketizer((u) => onFrame({ track, timestamp: u.timestamp, keyframe: true, data: [u.data] }));
      this.#depacketize = (pkt) => d.push(pkt);
    }
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
      this.#depacketize(pkt);
    } catch (e) {
      if (e instanceof DepacketizeError) return this.#drops.note(e);
      throw e;
    }
  }
}
