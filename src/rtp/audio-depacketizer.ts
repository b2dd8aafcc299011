import { DepacketizeError } from './errors.js';
import type { RtpPacket } from './packet.js';
import { TimestampUnwrapper } from './timestamp.js';

// Opus (RFC 7587 4.2) and G.711 PCMA/PCMU (RFC 3551 4.5.14): one RTP payload is one frame.

export interface AudioUnit {
  /** RTP timestamp unwrapped (monotonic), in the codec clock. */
  timestamp: number;
  /** A copy of the payload, so the socket chunk it came in is not kept alive. */
  data: Buffer;
}

export class AudioDepacketizer {
  #unwrap = new TimestampUnwrapper();

  constructor(private readonly onUnit: (u: AudioUnit) => void) {}

  /** Throws DepacketizeError for an empty payload (nothing was delivered for it). */
  push(pkt: RtpPacket): void {
    if (pkt.payload.length === 0) throw new DepacketizeError('EmptyPayload', 'RTP packet without payload');
    this.onUnit({ timestamp: this.#unwrap.unwrap(pkt.timestamp), data: Buffer.from(pkt.payload) });
  }
}
