// Audio RTP payloads: one frame per packet. An Opus packet (RFC 7587) or a run of G.711 samples
// (RFC 3551) is already a complete RTP payload, so there is nothing to split.
import type { Frame } from '../core/media.js';
import type { RtpPayload } from './h264-packetizer.js';

const cache = new WeakMap<Frame, RtpPayload[]>();

/** The payload of an audio frame, shared between viewers. Marker stays clear: no talkspurts here. */
export function packetizeAudioFrame(frame: Frame): readonly RtpPayload[] {
  let p = cache.get(frame);
  if (!p) {
    const payload = frame.data.length === 1 ? frame.data[0]! : Buffer.concat(frame.data);
    p = payload.length ? [{ payload, marker: false }] : [];
    cache.set(frame, p);
  }
  return p;
}
