// RTCP sender reports (RFC 3550 6.4.1): they tie each RTP timeline to the wall clock, which is
// how a player lines audio up with video (and what live555-based players wait for to sync).

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX_OFFSET = 2_208_988_800;
const SR_BYTES = 28;

export interface SenderReport {
  ssrc: number;
  /** Wall-clock time of the report, ms since the Unix epoch. */
  wallMs: number;
  /** The RTP timestamp that corresponds to `wallMs` (32-bit). */
  rtpTimestamp: number;
  packets: number;
  /** Payload octets sent (headers not counted). */
  octets: number;
}

/** A sender report without report blocks (a sender receives no RTP from the player). */
export function senderReport(r: SenderReport): Buffer {
  const b = Buffer.alloc(SR_BYTES);
  b[0] = 0x80; // V=2, P=0, RC=0
  b[1] = 200; // SR
  b.writeUInt16BE(SR_BYTES / 4 - 1, 2);
  b.writeUInt32BE(r.ssrc >>> 0, 4);
  const secs = Math.floor(r.wallMs / 1000);
  const frac = Math.floor(((r.wallMs % 1000) / 1000) * 2 ** 32);
  b.writeUInt32BE((secs + NTP_UNIX_OFFSET) >>> 0, 8);
  b.writeUInt32BE(frac >>> 0, 12);
  b.writeUInt32BE(r.rtpTimestamp >>> 0, 16);
  b.writeUInt32BE(r.packets >>> 0, 20);
  b.writeUInt32BE(r.octets >>> 0, 24);
  return b;
}
