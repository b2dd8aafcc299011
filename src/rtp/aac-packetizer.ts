// AAC RTP payloads per RFC 3640 in AAC-hbr mode (sizeLength 13, indexLength 3,
// indexDeltaLength 3): one access unit per packet behind a single 16-bit AU header, or, for an
// access unit larger than a packet, its fragments, each with the whole unit's size (3.2.3).
import type { Frame } from '../core/media.js';
import { DEFAULT_MAX_PAYLOAD, type RtpPayload } from './h264-packetizer.js';

/** AU-headers-length (16 bits) + one AU header (13-bit size, 3-bit index). */
const HEADER_BYTES = 4;
/** The largest size a 13-bit AU-size field holds. */
export const MAX_AAC_AU = 0x1fff;

/** The fmtp parameters AAC-hbr needs, without config. */
export const AAC_HBR_FMTP = 'streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3';

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
    out.push({ payload: Buffer.concat([header, chunk]), marker: off + step >= au.length });
  }
  return out;
}

const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/**
 * A 2-byte AAC-LC AudioSpecificConfig (ISO 14496-3 1.6.2.1) as hex, for an SDP that has no
 * `config=` to pass on. Undefined for a rate or channel count it cannot express.
 */
export function aacLcConfig(sampleRate: number, channels: number): string | undefined {
  const freqIndex = SAMPLE_RATES.indexOf(sampleRate);
  if (freqIndex < 0 || channels < 1 || channels > 7) return undefined;
  const objectType = 2; // AAC LC
  const v = (objectType << 11) | (freqIndex << 7) | (channels << 3);
  return v.toString(16).padStart(4, '0');
}

const cache = new WeakMap<Frame, RtpPayload[]>();

/** The RTP payloads of an AAC frame, shared between viewers. */
export function packetizeAacFrame(frame: Frame): readonly RtpPayload[] {
  let p = cache.get(frame);
  if (!p) {
    const au = frame.data.length === 1 ? frame.data[0]! : Buffer.concat(frame.data);
    p = packetizeAac(au);
    cache.set(frame, p);
  }
  return p;
}
