// What a packetizer makes: RTP payloads with their marker bit, shared by every viewer of a frame.
import type { Frame } from '../core/media.js';

/**
 * Shared between viewers: never modified after packetizing. The payload is `head` then `body`:
 * a fragment's body is a view of its NAL unit, so a frame is not copied once more per packet
 * to put a 2- or 3-byte fragmentation header in front of each piece; every output writes the
 * two parts into the packet it builds.
 */
export interface RtpPayload {
  /** A fragmentation unit's header (FU-A, H.265 FU), shared by fragments with the same flags; else empty. */
  readonly head: Buffer;
  readonly body: Buffer;
  /** Set on the last packet of an access unit (RFC 6184 5.1, RFC 7798 4.1, RFC 3640 3.2.3). */
  readonly marker: boolean;
}

/** For payloads with nothing in front of the body. */
export const NO_HEAD = Buffer.alloc(0);

/** A payload as one buffer, for outputs that need it whole (werift keeps the packet it is given). */
export function payloadBytes(p: Pick<RtpPayload, 'head' | 'body'>): Buffer {
  return p.head.length === 0 ? p.body : Buffer.concat([p.head, p.body]);
}

/**
 * Fragments of one NAL unit after its first `skip` bytes (the NAL header, which the
 * fragmentation header replaces), `step` bytes each: views, with the start/middle/end headers
 * that `header(start, end)` makes, each made once per NAL.
 */
export function fragments(nal: Buffer, skip: number, step: number, header: (start: boolean, end: boolean) => Buffer, out: RtpPayload[]): void {
  const first = header(true, false);
  const middle = header(false, false);
  const last = header(false, true);
  for (let off = skip; off < nal.length; off += step) {
    const end = off + step >= nal.length;
    const head = off === skip ? (end ? header(true, true) : first) : end ? last : middle;
    out.push({ head, body: nal.subarray(off, off + step), marker: false });
  }
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

/** Sets the marker on the last payload (the end of an access unit), in place. */
export function markLast(payloads: RtpPayload[]): RtpPayload[] {
  const last = payloads[payloads.length - 1];
  if (last) payloads[payloads.length - 1] = { head: last.head, body: last.body, marker: true };
  return payloads;
}

/** A frame's data as one buffer (audio frames are one payload, usually in one buffer already). */
export function joined(frame: Frame): Buffer {
  return frame.data.length === 1 ? frame.data[0]! : Buffer.concat(frame.data);
}
