import { aacRtpConfig } from '../codecs/aac.js';
import { findParams, withParameterSets } from '../codecs/h264.js';
import { h265ParamsFromFmtp, withH265ParameterSets } from '../codecs/h265.js';
import type { Logger } from '../core/log.js';
import type { CodecName, Frame, Track } from '../core/media.js';
import { AacDepacketizer } from '../rtp/aac-depacketizer.js';
import { AudioDepacketizer } from '../rtp/audio-depacketizer.js';
import { DepacketizeError, RtpPacketError } from '../rtp/errors.js';
import { H264Depacketizer, type AccessUnit } from '../rtp/h264-depacketizer.js';
import { H265Depacketizer } from '../rtp/h265-depacketizer.js';
import { parseRtp, type RtpPacket } from '../rtp/packet.js';
import { forPayloadType, parseFmtp, type SdpMedia } from './sdp.js';

// From an SDP media section to a Track, and from that track's RTP packets to Frames.

const SUPPORTED: Record<string, { name: CodecName; kind: 'video' | 'audio' }> = {
  H264: { name: 'H264', kind: 'video' },
  H265: { name: 'H265', kind: 'video' },
  'MPEG4-GENERIC': { name: 'AAC', kind: 'audio' },
  OPUS: { name: 'OPUS', kind: 'audio' },
  PCMA: { name: 'PCMA', kind: 'audio' },
  PCMU: { name: 'PCMU', kind: 'audio' },
};

/** Why a media section cannot become a track, or undefined when it can. */
export function unsupportedReason(m: SdpMedia): string | undefined {
  if (m.payloadTypes.length === 0) return `${m.kind} media with no RTP payload type (formats ${m.formats.join(' ').slice(0, 60)})`;
  const c = m.codec ? SUPPORTED[m.codec] : undefined;
  if (!c) return `codec ${m.codec ?? `payload type ${m.payloadType}`} is not carried`;
  if (m.kind !== c.kind) return `${m.codec} in a ${m.kind} section`;
  if (c.name === 'H265' && Number(m.fmtpParams['sprop-max-don-diff'] ?? 0) > 0) return 'H.265 with decoding order numbers (sprop-max-don-diff > 0)';
  if (c.name === 'AAC') {
    const cfg = aacRtpConfig(m.fmtpParams, m.clockRate ?? 0);
    if ('unsupported' in cfg) return `AAC with ${cfg.unsupported}`;
    if (!m.clockRate) return 'AAC without a clock rate';
  }
  return undefined;
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
  const c = SUPPORTED[m.codec!]!;
  switch (c.name) {
    case 'H264': {
      const params = findParams(m.sprop ?? []);
      return { kind: 'video', codec: { name: 'H264', clockRate: m.clockRate ?? 90000, fmtp: m.fmtp }, params };
    }
    case 'H265':
      return { kind: 'video', codec: { name: 'H265', clockRate: m.clockRate ?? 90000, fmtp: m.fmtp }, params: h265ParamsFromFmtp(m.fmtpParams) };
    case 'AAC':
      // The fmtp (config=…, sizelength=…) is kept: an RTSP re-serve and the depacketizer need it.
      return { kind: 'audio', codec: { name: 'AAC', clockRate: m.clockRate!, channels: m.channels ?? 1, fmtp: m.fmtp } };
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
    const name = track.codec.name;
    if (name === 'H264' || name === 'H265') {
      const params = (track.params ??= {});
      const onAccessUnit = (au: AccessUnit) => {
        // Keeps track.params current and puts the parameter sets in front of every keyframe for late joiners.
        const data = name === 'H264' ? withParameterSets(au.nals, params) : withH265ParameterSets(au.nals, params);
        const missing = !params.sps || !params.pps || (name === 'H265' && !params.vps);
        if (au.keyframe && missing && !this.#warnedNoParams) {
          this.#warnedNoParams = true;
          log.warn(`${name} keyframe without known parameter sets: late joiners cannot decode it`);
        }
        onFrame({ track, timestamp: au.timestamp, keyframe: au.keyframe, data });
      };
      const d = name === 'H264' ? new H264Depacketizer(onAccessUnit) : new H265Depacketizer(onAccessUnit);
      this.#depacketize = (pkt) => d.push(pkt);
    } else if (name === 'AAC') {
      const cfg = aacRtpConfig(parseFmtp(track.codec.fmtp ?? ''), track.codec.clockRate);
      if ('unsupported' in cfg) throw new Error(`AAC track with ${cfg.unsupported}: trackFromMedia should have refused it`);
      const d = new AacDepacketizer(cfg, (u) => onFrame({ track, timestamp: u.timestamp, keyframe: true, data: [u.data] }));
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
