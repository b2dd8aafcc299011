// H.265 RTP payloads per RFC 7798 without DONL (sprop-max-don-diff 0): a NAL unit that fits the
// payload budget goes alone (4.4.1), a larger one is split into fragmentation units (4.4.3).
// Aggregation packets are not used: parameter sets go as single NAL unit packets.
import type { Track } from '../core/media.js';
import { H265NalType, h265NalType, h265ParameterSetsFirst } from '../codecs/h265.js';
import { DEFAULT_MAX_PAYLOAD, fragments, markLast, NO_HEAD, perFrame, type RtpPayload } from './payload.js';

/** Filler data (H.265 table 7-1): droppable by definition. */
const FD = 38;

/** PayloadHdr (2 bytes, the NAL header's layout) + FU header (1 byte). */
const FU_OVERHEAD = 3;

/** Splits one access unit (NAL units without start codes) into RTP payloads. */
export function packetizeH265(nals: readonly Buffer[], maxPayload = DEFAULT_MAX_PAYLOAD): RtpPayload[] {
  if (maxPayload <= FU_OVERHEAD) throw new RangeError(`maxPayload ${maxPayload} is too small for an H.265 FU`);
  const out: RtpPayload[] = [];
  for (const nal of nals) {
    if (nal.length < 2) continue;
    const t = h265NalType(nal);
    if (t === H265NalType.Aud || t === FD) continue;
    if (nal.length <= maxPayload) {
      out.push({ head: NO_HEAD, body: nal, marker: false });
      continue;
    }
    const hdr0 = (nal[0]! & 0x81) | (H265NalType.Fu << 1);
    const hdr1 = nal[1]!;
    fragments(nal, 2, maxPayload - FU_OVERHEAD, (start, end) => Buffer.from([hdr0, hdr1, (start ? 0x80 : 0) | (end ? 0x40 : 0) | t]), out);
  }
  return markLast(out);
}

/** A keyframe with VPS, SPS and PPS from the track in front when the access unit lacks them (see withTrackParameterSets). */
export function withTrackH265ParameterSets(nals: readonly Buffer[], track: Track, keyframe: boolean): readonly Buffer[] {
  return keyframe ? h265ParameterSetsFirst(nals, track.params ?? {}) : nals;
}

/** The RTP payloads of an H.265 frame, shared between viewers. */
export const packetizeH265Frame = perFrame((frame) => packetizeH265(withTrackH265ParameterSets(frame.data, frame.track, frame.keyframe)));
