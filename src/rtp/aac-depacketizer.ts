import type { AacRtpConfig } from '../codecs/aac.js';
import type { AudioUnit } from './audio-depacketizer.js';
import { DepacketizeError } from './errors.js';
import type { RtpPacket } from './packet.js';
import { TimestampUnwrapper } from './timestamp.js';

// RFC 3640 (MPEG4-GENERIC, AAC-hbr/lbr): a payload is a 16-bit AU-headers-length in bits, the AU
// headers (AU-size + AU-index, then AU-size + AU-index-delta), then the access units back to back
// (3.2). An access unit larger than a packet is fragmented: each fragment carries one AU header
// with the full size, under one timestamp, the marker on the last (3.2.3.2). Interleaving is not
// supported: index deltas are read and ignored, AUs are taken in order.

/** Largest access unit accepted (AAC frames are at most 6144 bits per channel; 8 channels). */
const MAX_AU_BYTES = 8 * 1024;

interface Fragment {
  timestamp: number;
  size: number;
  parts: Buffer[];
  bytes: number;
}

export class AacDepacketizer {
  #unwrap = new TimestampUnwrapper();
  #frag: Fragment | undefined;
  #lastSeq: number | undefined;
  /** Timestamp of a broken fragmented AU whose remaining fragments are dropped silently. */
  #skipTs: number | undefined;

  constructor(
    private readonly config: AacRtpConfig,
    private readonly onUnit: (u: AudioUnit) => void,
  ) {}

  /** Delivers the complete AUs of this packet, then throws a DepacketizeError if part of it was unusable. */
  push(pkt: RtpPacket): void {
    const gap = this.#lastSeq !== undefined && pkt.sequenceNumber !== ((this.#lastSeq + 1) & 0xffff);
    this.#lastSeq = pkt.sequenceNumber;
    const ts = this.#unwrap.unwrap(pkt.timestamp);
    const p = pkt.payload;
    let error: DepacketizeError | undefined;
    if (this.#frag && (gap || this.#frag.timestamp !== ts)) {
      const sameAu = this.#frag.timestamp === ts;
      this.#frag = undefined;
      error = new DepacketizeError('AuFragmentBroken', gap ? 'packet lost inside a fragmented AU' : 'a new timestamp began inside a fragmented AU');
      if (sameAu) {
        // The rest of the broken AU: ignore it up to its marker.
        this.#skipTs = pkt.marker ? undefined : ts;
        throw error;
      }
    }
    if (this.#skipTs !== undefined) {
      if (this.#skipTs === ts) {
        if (pkt.marker) this.#skipTs = undefined;
        return;
      }
      this.#skipTs = undefined;
    }

    const sizes = this.#headers(p);
    if (sizes instanceof DepacketizeError) throw sizes;
    const { lengths, dataStart } = sizes;
    const data = p.subarray(dataStart);

    if (this.#frag) return this.#continue(lengths, data, pkt.marker);

    const total = lengths.reduce((a, b) => a + b, 0);
    if (lengths.length === 1 && total > data.length) {
      // The first fragment of a large AU.
      if (total > MAX_AU_BYTES) throw error ?? new DepacketizeError('AuDataTruncated', `AU of ${total} bytes exceeds ${MAX_AU_BYTES}`);
      if (pkt.marker) throw error ?? new DepacketizeError('AuDataTruncated', `AU of ${total} bytes with ${data.length} in its only packet`);
      this.#frag = { timestamp: ts, size: total, parts: [Buffer.from(data)], bytes: data.length };
      if (error) throw error;
      return;
    }
    let off = 0;
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i]!;
      if (off + n > data.length) {
        error = new DepacketizeError('AuDataTruncated', `AU ${i} of ${n} bytes at ${off} in ${data.length}`);
        break;
      }
      if (n > 0) this.onUnit({ timestamp: ts + i * this.config.auDuration, data: Buffer.from(data.subarray(off, off + n)) });
      off += n;
    }
    if (error) throw error;
  }

  #continue(lengths: number[], data: Buffer, marker: boolean): void {
    const f = this.#frag!;
    if (lengths.length !== 1 || lengths[0] !== f.size || f.bytes + data.length > f.size) {
      this.#frag = undefined;
      throw new DepacketizeError('AuFragmentBroken', `fragment of ${data.length} bytes does not continue an AU of ${f.size}`);
    }
    f.parts.push(Buffer.from(data));
    f.bytes += data.length;
    if (f.bytes < f.size) {
      if (!marker) return;
      this.#frag = undefined;
      throw new DepacketizeError('AuFragmentBroken', `marker after ${f.bytes} of ${f.size} bytes`);
    }
    this.#frag = undefined;
    this.onUnit({ timestamp: f.timestamp, data: Buffer.concat(f.parts, f.size) });
  }

  #headers(p: Buffer): { lengths: number[]; dataStart: number } | DepacketizeError {
    if (p.length < 2) return new DepacketizeError('AuHeadersTruncated', `payload of ${p.length} bytes`);
    const bits = p.readUInt16BE(0);
    const dataStart = 2 + Math.ceil(bits / 8);
    if (dataStart > p.length) return new DepacketizeError('AuHeadersTruncated', `${bits} bits of AU headers in ${p.length} bytes`);
    const { sizeLength, indexLength, indexDeltaLength } = this.config;
    const lengths: number[] = [];
    let pos = 16;
    const end = 16 + bits;
    while (pos < end) {
      const idxBits = lengths.length === 0 ? indexLength : indexDeltaLength;
      if (pos + sizeLength + idxBits > end) return new DepacketizeError('AuHeadersTruncated', `AU header ${lengths.length} cut at bit ${pos - 16} of ${bits}`);
      lengths.push(readBits(p, pos, sizeLength));
      pos += sizeLength + idxBits;
    }
    if (lengths.length === 0) return new DepacketizeError('AuHeadersTruncated', 'no AU header');
    return { lengths, dataStart };
  }
}

function readBits(buf: Buffer, pos: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++, pos++) v = v * 2 + ((buf[pos >> 3]! >> (7 - (pos & 7))) & 1);
  return v;
}
