// Audio RTP payloads: one frame per packet. An Opus packet (RFC 7587) or a run of G.711 samples
// (RFC 3551) is already a complete RTP payload, so there is nothing to split.
import { joined, NO_HEAD, perFrame, type RtpPayload } from './payload.js';

/** The payload of an audio frame, shared between viewers. Marker stays clear: no talkspurts here. */
export const packetizeAudioFrame = perFrame((frame): RtpPayload[] => {
  const payload = joined(frame);
  return payload.length ? [{ head: NO_HEAD, body: payload, marker: false }] : [];
});
