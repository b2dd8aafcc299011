import { RtpPacketError } from './errors.js';

// RTP fixed header (RFC 3550 5.1) with CSRC list, header extension (5.3.1) and padding.

export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  /** Raw 32-bit timestamp; see TimestampUnwrapper for a monotonic one. */
  timestamp: number;
  ssrc: number;
  csrc: number[];
  extension?: { profile: number; data: Buffer };
  /** A view into the input buffer, padding removed. */
  payload: Buffer;
}

const FIXED_HEADER = 12;

/** Parses one RTP packet; throws RtpPacketError when any length or field is out of bounds. */
export function parseRtp(buf: Buffer): RtpPacket {
  if (buf.length < FIXED_HEADER) throw new RtpPacketError('RtpTruncated', `${buf.length} bytes is shorter than the RTP header`);
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  const version = b0 >> 6;
  if (version !== 2) throw new RtpPacketError('RtpBadVersion', `version ${version}`);
  const hasPadding = (b0 & 0x20) !== 0;
  const hasExtension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;

  let offset = FIXED_HEADER + csrcCount * 4;
  if (offset > buf.length) throw new RtpPacketError('RtpTruncated', `${csrcCount} CSRCs do not fit in ${buf.length} bytes`);
  const csrc: number[] = [];
  for (let i = 0; i < csrcCount; i++) csrc.push(buf.readUInt32BE(FIXED_HEADER + i * 4));

  let extension: RtpPacket['extension'];
  if (hasExtension) {
    if (offset + 4 > buf.length) throw new RtpPacketError('RtpBadExtension', 'extension header truncated');
    const profile = buf.readUInt16BE(offset);
    const words = buf.readUInt16BE(offset + 2);
    const end = offset + 4 + words * 4;
    if (end > buf.length) throw new RtpPacketError('RtpBadExtension', `extension of ${words} words does not fit`);
    extension = { profile, data: buf.subarray(offset + 4, end) };
    offset = end;
  }

  let end = buf.length;
  if (hasPadding) {
    const pad = buf[buf.length - 1]!;
    // The count includes itself, so 0 is invalid, and it may not eat into the header.
    if (pad === 0 || pad > buf.length - offset) throw new RtpPacketError('RtpBadPadding', `padding ${pad} with ${buf.length - offset} bytes after the header`);
    end -= pad;
  }

  return {
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    csrc,
    extension,
    payload: buf.subarray(offset, end),
  };
}

export interface RtpHeaderFields {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
}

/** Writes a 12-byte RTP fixed header (no CSRC, extension or padding) into `buf` at `offset`. */
export function writeRtpHeader(buf: Buffer, offset: number, h: RtpHeaderFields): void {
  buf[offset] = 0x80;
  buf[offset + 1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  buf.writeUInt16BE(h.sequenceNumber & 0xffff, offset + 2);
  buf.writeUInt32BE(h.timestamp >>> 0, offset + 4);
  buf.writeUInt32BE(h.ssrc >>> 0, offset + 8);
}
