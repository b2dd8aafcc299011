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

/** How many of a track's latest frames keep their payloads (see perFrame). */
const FRAMES_KEPT_PER_TRACK = 2;

/**
 * `packetize` made once per Frame: every viewer of a stream gets the same Frame object, so the
 * payloads are shared and each viewer writes only its own RTP header (DESIGN.md: packetize once).
 *
 * Only a track's latest frames keep theirs. A stream hands a frame to all its viewers before the
 * next one starts (SlicedFanOut), so the latest frame is the one being asked for; an older one
 * (a joining viewer's GOP replay) is packetized again. Keeping payloads as long as their frame
 * lived (a WeakMap) held a whole GOP's FU-A copies and their objects for the GOP cache's 2 s:
 * V8 promoted them all to its old space, and a house of 16 cameras paid a full mark-compact every
 * half second for it.
 */
export function perFrame(packetize: (frame: Frame) => RtpPayload[]): (frame: Frame) => readonly RtpPayload[] {
  const recent = new WeakMap<Frame['track'], { frame: Frame; payloads: RtpPayload[] }[]>();
  return (frame) => {
    let kept = recent.get(frame.track);
    if (!kept) recent.set(frame.track, (kept = []));
    for (const k of kept) if (k.frame === frame) return k.payloads;
    const payloads = packetize(frame);
    if (kept.length >= FRAMES_KEPT_PER_TRACK) kept.shift();
    kept.push({ frame, payloads });
    return payloads;
  };
}

/** A frame's data as one buffer (audio frames are one payload, usually in one buffer already). */
export function joined(frame: Frame): Buffer {
  return frame.data.length === 1 ? frame.data[0]! : Buffer.concat(frame.data);
}
