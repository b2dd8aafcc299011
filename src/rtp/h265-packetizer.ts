// H.265 RTP payloads per RFC 7798 without DONL (sprop-max-don-diff 0): a NAL unit that fits the
// payload budget goes alone (4.4.1), a larger one is split into fragmentation units (4.4.3).
// Aggregation packets are not used: parameter sets go as single NAL unit packets.
import type { Track } from '../core/media.js';
import { H265NalType, h265NalType, h265ParameterSetsFirst } from '../codecs/h265.js';
import { DEFAULT_MAX_PAYLOAD, perFrame, type RtpPayload } from './payload.js';

/** Filler data (H.265 table 7-1): droppable by definition. */
const FD = 38;

/** PayloadHdr (2 bytes, the NAL header's layout) + FU header (1 byte). */
const FU_OVERHEAD = 3;

/** Splits one access unit (NAL units without start codes) into RTP payloads. */
export function packetizeH265(nals: readonly Buffer[], maxPayload = DEFAULT_MAX_PAYLOAD): RtpPayload[] {
  if (maxPayload <= FU_OVERHEAD) throw new RangeError(`maxPayload ${maxPayload} is too small for an H.265 FU`);
  const out: Buffer[] = [];
  for (const nal of nals) {
    // A NAL unit is at least its 2-byte header.
    if (nal.length < 2) continue;
    const t = h265NalType(nal);
    if (t === H265NalType.Aud || t === FD) continue;
    if (nal.length <= maxPayload) {
      out.push(nal);
      continue;
    }
    // PayloadHdr: F, LayerId and TID of the NAL unit, type FU.
    const hdr0 = (nal[0]! & 0x81) | (H265NalType.Fu << 1);
    const hdr1 = nal[1]!;
    const body = nal.subarray(2);
    const step = maxPayload - FU_OVERHEAD;
    for (let off = 0; off < body.length; off += step) {
      const start = off === 0;
      const end = off + step >= body.length;
      const chunk = body.subarray(off, off + step);
      const p = Buffer.allocUnsafe(FU_OVERHEAD + chunk.length);
      p[0] = hdr0;
      p[1] = hdr1;
      p[2] = (start ? 0x80 : 0) | (end ? 0x40 : 0) | t;
      chunk.copy(p, FU_OVERHEAD);
      out.push(p);
    }
  }
  return out.map((payload, i) => ({ payload, marker: i === out.length - 1 }));
}

/** A keyframe with VPS, SPS and PPS from the track in front when the access unit lacks them (see withTrackParameterSets). */
export function withTrackH265ParameterSets(nals: readonly Buffer[], track: Track, keyframe: boolean): readonly Buffer[] {
  return keyframe ? h265ParameterSetsFirst(nals, track.params ?? {}) : nals;
}

/** The RTP payloads of an H.265 frame, shared between viewers. */
export const packetizeH265Frame = perFrame((frame) => packetizeH265(withTrackH265ParameterSets(frame.data, frame.track, frame.keyframe)));
