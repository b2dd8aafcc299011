// One receiver's RTP numbering for one media: sequence numbers and timestamps start at random
// values (RFC 3550 5.1) and stay continuous when the stream's source is replaced after a
// reconnect. Shared by every output that writes RTP (WebRTC, RTSP).
import { randomInt } from 'node:crypto';
import type { Frame, Track } from '../core/media.js';

/** How far after the last packet a new source's timeline continues: one 20 ms frame. */
const SOURCE_CHANGE_STEP_SEC = 1 / 50;

export class RtpTimeline {
  #seq = randomInt(0x10000);
  #offset = randomInt(2 ** 32);
  #lastTrack: Track | undefined;
  #lastTs = 0;

  constructor(readonly clockRate: number) {}

  /** The 32-bit RTP timestamp of `frame`; call once per frame sent, in order. */
  timestamp(frame: Frame): number {
    if (this.#lastTrack && frame.track !== this.#lastTrack) {
      // A new source (a reconnect) starts its own timeline, and its frames come with new Track
      // objects. Continue ours a little after the last packet instead of jumping, which would
      // stall the receiver's jitter buffer.
      this.#offset = this.#lastTs + Math.round(this.clockRate * SOURCE_CHANGE_STEP_SEC) - frame.timestamp;
    }
    this.#lastTrack = frame.track;
    this.#lastTs = frame.timestamp + this.#offset;
    return ((this.#lastTs % 2 ** 32) + 2 ** 32) % 2 ** 32;
  }

  /** Takes the next 16-bit sequence number. */
  nextSequence(): number {
    const s = this.#seq;
    this.#seq = (s + 1) & 0xffff;
    return s;
  }

  /** The sequence number the next packet gets (RTP-Info). */
  get sequence(): number {
    return this.#seq;
  }
}
