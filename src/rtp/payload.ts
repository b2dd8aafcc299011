// What a packetizer makes: RTP payloads with their marker bit, shared by every viewer of a frame.
import type { Frame } from '../core/media.js';

/** Shared between viewers: never modified after packetizing. */
export interface RtpPayload {
  readonly payload: Buffer;
  /** Set on the last packet of an access unit (RFC 6184 5.1, RFC 7798 4.1, RFC 3640 3.2.3). */
  readonly marker: boolean;
}

/** Payload bytes per packet: leaves room for RTP header, extensions and SRTP tag under a 1280+ path MTU. */
export const DEFAULT_MAX_PAYLOAD = 1200;

/**
 * `packetize` made once per Frame: every viewer of a stream gets the same Frame object, so the
 * payloads are shared and each viewer writes only its own RTP header (DESIGN.md: packetize once).
 */
export function perFrame(packetize: (frame: Frame) => RtpPayload[]): (frame: Frame) => readonly RtpPayload[] {
  const cache = new WeakMap<Frame, RtpPayload[]>();
  return (frame) => {
    let p = cache.get(frame);
    if (!p) {
      p = packetize(frame);
      cache.set(frame, p);
    }
    return p;
  };
}

/** A frame's data as one buffer (audio frames are one payload, usually in one buffer already). */
export function joined(frame: Frame): Buffer {
  return frame.data.length === 1 ? frame.data[0]! : Buffer.concat(frame.data);
}
