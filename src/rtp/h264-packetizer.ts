// H.264 RTP payloads per RFC 6184, packetization-mode 1: a NAL unit that fits the payload budget
// goes alone (5.6), a larger one is split into FU-A fragments (5.8). STAP-A is not used: browsers
// take SPS and PPS as separate single-NAL packets just as well.
import type { Track } from '../core/media.js';
import { NalType, nalType, parameterSetsFirst } from '../codecs/h264.js';
import { DEFAULT_MAX_PAYLOAD, fragments, markLast, NO_HEAD, perFrame, type RtpPayload } from './payload.js';

export { DEFAULT_MAX_PAYLOAD, type RtpPayload };

/** FU indicator + FU header. */
const FU_A_OVERHEAD = 2;

/** Splits one access unit (NAL units without start codes) into RTP payloads. */
export function packetizeH264(nals: readonly Buffer[], maxPayload = DEFAULT_MAX_PAYLOAD): RtpPayload[] {
  if (maxPayload <= FU_A_OVERHEAD) throw new RangeError(`maxPayload ${maxPayload} is too small for FU-A`);
  const out: RtpPayload[] = [];
  for (const nal of nals) {
    if (nal.length === 0) continue;
    const t = nalType(nal);
    // An AUD says nothing a packet stream needs; filler data is by definition droppable.
    if (t === NalType.Aud || t === FILLER) continue;
    if (nal.length <= maxPayload) {
      out.push({ head: NO_HEAD, body: nal, marker: false });
      continue;
    }
    const indicator = (nal[0]! & 0xe0) | NalType.FuA;
    fragments(nal, 1, maxPayload - FU_A_OVERHEAD, (start, end) => Buffer.from([indicator, (start ? 0x80 : 0) | (end ? 0x40 : 0) | t]), out);
  }
  return markLast(out);
}

const FILLER = 12;

/**
 * A keyframe a viewer can decode from: SPS and PPS from the track put in front when the access
 * unit does not carry them. Frames from the RTSP receiver already have them there (it puts them
 * in front as frames enter a stream), and come back as they are; this covers frames made
 * elsewhere. Does not touch the track or the input array.
 */
export function withTrackParameterSets(nals: readonly Buffer[], track: Track, keyframe: boolean): readonly Buffer[] {
  return keyframe ? parameterSetsFirst(nals, track.params ?? {}) : nals;
}

/** The RTP payloads of an H.264 frame, shared between viewers. */
export const packetizeH264Frame = perFrame((frame) => packetizeH264(withTrackParameterSets(frame.data, frame.track, frame.keyframe)));
