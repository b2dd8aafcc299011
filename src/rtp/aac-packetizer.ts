// AAC RTP payloads per RFC 3640 in AAC-hbr mode (sizeLength 13, indexLength 3,
// indexDeltaLength 3): one access unit per packet behind a single 16-bit AU header, or, for an
// access unit larger than a packet, its fragments, each with the whole unit's size (3.2.3).
import { DEFAULT_MAX_PAYLOAD, joined, perFrame, type RtpPayload } from './payload.js';

/** The AU header layout these payloads have, for the fmtp that announces them (RFC 3640 4.1). */
export const AAC_HBR_LAYOUT = { sizeLength: 13, indexLength: 3, indexDeltaLength: 3 } as const;

/** AU-headers-length (16 bits) + one AU header (13-bit size, 3-bit index). */
const HEADER_BYTES = 4;
/** The largest size a 13-bit AU-size field holds. */
export const MAX_AAC_AU = 0x1fff;

/** RTP payloads for one AAC access unit (raw, without ADTS header). Empty for an oversized unit. */
export function packetizeAac(au: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD): RtpPayload[] {
  if (maxPayload <= HEADER_BYTES) throw new RangeError(`maxPayload ${maxPayload} is too small for AAC`);
  if (au.length === 0 || au.length > MAX_AAC_AU) return [];
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt16BE(16, 0); // bits of AU headers that follow
  header.writeUInt16BE(au.length << 3, 2); // AU-size, AU-index 0
  const step = maxPayload - HEADER_BYTES;
  const out: RtpPayload[] = [];
  for (let off = 0; off < au.length; off += step) {
    const chunk = au.subarray(off, off + step);
    // The marker is set on a packet that ends an access unit (RFC 3640 3.2.3).
    out.push({ head: header, body: chunk, marker: off + step >= au.length });
  }
  return out;
}

/** The RTP payloads of an AAC frame, shared between viewers. */
export const packetizeAacFrame = perFrame((frame) => packetizeAac(joined(frame)));
