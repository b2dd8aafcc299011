// H.264 RTP payloads per RFC 6184, packetization-mode 1: a NAL unit that fits the payload budget
// goes alone (5.6), a larger one is split into FU-A fragments (5.8). STAP-A is not used: browsers
// take SPS and PPS as separate single-NAL packets just as well.
import type { Frame, Track } from '../core/media.js';
import { NalType, nalType } from '../codecs/h264.js';

/** Shared between viewers: never modified after packetizing. */
export interface RtpPayload {
  readonly payload: Buffer;
  /** Set on the last packet of an access unit (RFC 6184 5.1). */
  readonly marker: boolean;
}

/** Payload bytes per packet: leaves room for RTP header, extensions and SRTP tag under a 1280+ path MTU. */
export const DEFAULT_MAX_PAYLOAD = 1200;

/** FU indicator + FU header. */
const FU_A_OVERHEAD = 2;

/** Splits one access unit (NAL units without start codes) into RTP payloads. */
export function packetizeH264(nals: readonly Buffer[], maxPayload = DEFAULT_MAX_PAYLOAD): RtpPayload[] {
  if (maxPayload <= FU_A_OVERHEAD) throw new RangeError(`maxPayload ${maxPayload} is too small for FU-A`);
  const out: Buffer[] = [];
  for (const nal of nals) {
    if (nal.length === 0) continue;
    const t = nalType(nal);
    // An AUD says nothing a packet stream needs; filler data is by definition droppable.
    if (t === NalType.Aud || t === FILLER) continue;
    if (nal.length <= maxPayload) {
      out.push(nal);
      continue;
    }
    const indicator = (nal[0]! & 0xe0) | NalType.FuA;
    const body = nal.subarray(1);
    const step = maxPayload - FU_A_OVERHEAD;
    for (let off = 0; off < body.length; off += step) {
      const start = off === 0;
      const end = off + step >= body.length;
      const header = (start ? 0x80 : 0) | (end ? 0x40 : 0) | t;
      const chunk = body.subarray(off, off + step);
      const p = Buffer.allocUnsafe(FU_A_OVERHEAD + chunk.length);
      p[0] = indicator;
      p[1] = header;
      chunk.copy(p, FU_A_OVERHEAD);
      out.push(p);
    }
  }
  return out.map((payload, i) => ({ payload, marker: i === out.length - 1 }));
}

const FILLER = 12;

/**
 * A keyframe a viewer can decode from: SPS and PPS from the track put in front when the access
 * unit does not carry them in band. Does not touch the track or the input array.
 */
export function withTrackParameterSets(nals: readonly Buffer[], track: Track, keyframe: boolean): readonly Buffer[] {
  if (!keyframe) return nals;
  let hasSps = false;
  let hasPps = false;
  for (const n of nals) {
    const t = nalType(n);
    if (t === NalType.Sps) hasSps = true;
    else if (t === NalType.Pps) hasPps = true;
  }
  const head: Buffer[] = [];
  if (!hasSps && track.params?.sps) head.push(track.params.sps);
  if (!hasPps && track.params?.pps) head.push(track.params.pps);
  return head.length ? [...head, ...nals] : nals;
}

// Every viewer of a stream gets the same Frame object, so the payloads are made once per frame
// and shared; each viewer writes its own RTP header around them (DESIGN.md: packetize once).
const cache = new WeakMap<Frame, RtpPayload[]>();

/** The RTP payloads of an H.264 frame (parameter sets added on keyframes), shared between viewers. */
export function packetizeH264Frame(frame: Frame): readonly RtpPayload[] {
  let p = cache.get(frame);
  if (!p) {
    p = packetizeH264(withTrackParameterSets(frame.data, frame.track, frame.keyframe));
    cache.set(frame, p);
  }
  return p;
}
