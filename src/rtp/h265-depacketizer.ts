import { H265NalType, isH265Keyframe } from '../codecs/h265.js';
import { DepacketizeError } from './errors.js';
import type { AccessUnit, H264DepacketizerLimits } from './h264-depacketizer.js';
import { DEFAULT_H264_LIMITS } from './h264-depacketizer.js';
import type { RtpPacket } from './packet.js';
import { TimestampUnwrapper } from './timestamp.js';

// RFC 7798 without DONL fields (sprop-max-don-diff 0, which is what cameras send): single NAL unit
// packets (4.4.1), aggregation packets (4.4.2) and fragmentation units (4.4.3). PACI is not used.

export type H265DepacketizerLimits = H264DepacketizerLimits;
export const DEFAULT_H265_LIMITS: H265DepacketizerLimits = DEFAULT_H264_LIMITS;

/** The 2-byte payload header plus the smallest NAL payload worth a byte. */
const MIN_PAYLOAD = 3;

interface Fragmented {
  /** Reconstructed 2-byte NAL header. */
  header: Buffer;
  parts: Buffer[];
  bytes: number;
}

/**
 * Groups NALs into access units: an AU ends with the marker bit or when a packet with another
 * timestamp arrives. Like the H.264 one, push() delivers finished AUs and then throws a
 * DepacketizeError if this packet was unusable; the broken part has been dropped by then.
 */
export class H265Depacketizer {
  #ts: number | undefined;
  #nals: Buffer[] = [];
  #bytes = 0;
  #auDropped = false;
  #fu: Fragmented | undefined;
  /** The current FU was dropped: its remaining fragments are ignored without more errors. */
  #fuDropped = false;
  #lastSeq: number | undefined;
  #unwrap = new TimestampUnwrapper();

  constructor(
    private readonly onAccessUnit: (au: AccessUnit) => void,
    private readonly limits: H265DepacketizerLimits = DEFAULT_H265_LIMITS,
  ) {}

  push(pkt: RtpPacket): void {
    let error: DepacketizeError | undefined;
    const gap = this.#lastSeq !== undefined && pkt.sequenceNumber !== ((this.#lastSeq + 1) & 0xffff);
    this.#lastSeq = pkt.sequenceNumber;

    if (this.#ts !== undefined && pkt.timestamp !== this.#ts) {
      if (this.#fu) error = this.#dropFu('FuUnfinished', 'a new timestamp began before the FU end fragment');
      this.#flush();
      this.#fuDropped = false;
    }
    this.#ts = pkt.timestamp;
    if (gap && this.#fu) error = this.#dropFu('FuSequenceGap', `packet ${pkt.sequenceNumber} follows a gap inside a FU`);

    error = this.#payload(pkt.payload) ?? error;

    if (pkt.marker) {
      if (this.#fu) error = this.#dropFu('FuUnfinished', 'marker bit set before the FU end fragment') ?? error;
      this.#flush();
    }
    if (error) throw error;
  }

  #payload(p: Buffer): DepacketizeError | undefined {
    if (p.length < MIN_PAYLOAD) return new DepacketizeError('EmptyPayload', `H.265 payload of ${p.length} bytes`);
    const type = (p[0]! >> 1) & 0x3f;
    if (type < H265NalType.Ap) return this.#addNal(Buffer.from(p));
    if (type === H265NalType.Ap) return this.#ap(p);
    if (type === H265NalType.Fu) return this.#fuPacket(p);
    return new DepacketizeError('UnsupportedNalType', `H.265 payload type ${type}`);
  }

  #ap(p: Buffer): DepacketizeError | undefined {
    // Parse the whole aggregate first so a truncated one adds nothing.
    const nals: Buffer[] = [];
    let off = 2;
    while (off < p.length) {
      if (off + 2 > p.length) return new DepacketizeError('ApTruncated', `size field cut at byte ${off}`);
      const size = p.readUInt16BE(off);
      off += 2;
      if (size < 2 || off + size > p.length) return new DepacketizeError('ApTruncated', `NAL of ${size} bytes at ${off} in ${p.length}`);
      nals.push(Buffer.from(p.subarray(off, off + size)));
      off += size;
    }
    if (nals.length === 0) return new DepacketizeError('ApTruncated', 'AP without NAL units');
    for (const n of nals) {
      const e = this.#addNal(n);
      if (e) return e;
    }
    return undefined;
  }

  #fuPacket(p: Buffer): DepacketizeError | undefined {
    if (p.length < 4) return new DepacketizeError('FuTruncated', `FU of ${p.length} bytes`);
    const fuHeader = p[2]!;
    const start = (fuHeader & 0x80) !== 0;
    const end = (fuHeader & 0x40) !== 0;
    const data = p.subarray(3);
    let error: DepacketizeError | undefined;
    if (start) {
      if (this.#fu) error = this.#dropFu('FuUnfinished', 'a FU start arrived before the previous one ended');
      this.#fuDropped = false;
      // F bit and LayerId high bit from the payload header, the type from the FU header.
      const header = Buffer.from([(p[0]! & 0x81) | ((fuHeader & 0x3f) << 1), p[1]!]);
      this.#fu = { header, parts: [], bytes: 2 };
    } else if (!this.#fu) {
      if (this.#fuDropped) {
        if (end) this.#fuDropped = false;
        return undefined;
      }
      return new DepacketizeError('FuWithoutStart', 'FU fragment without a start fragment');
    }
    const fu = this.#fu!;
    if (fu.bytes + data.length > this.limits.maxNalBytes) {
      return this.#dropFu('NalTooLarge', `FU exceeds ${this.limits.maxNalBytes} bytes`, !end) ?? error;
    }
    fu.parts.push(Buffer.from(data));
    fu.bytes += data.length;
    if (!end) return error;
    this.#fu = undefined;
    return this.#addNal(Buffer.concat([fu.header, ...fu.parts], fu.bytes)) ?? error;
  }

  #dropFu(code: 'FuUnfinished' | 'FuSequenceGap' | 'NalTooLarge', detail: string, skipRest = true): DepacketizeError | undefined {
    if (!this.#fu) return undefined;
    this.#fu = undefined;
    this.#fuDropped = skipRest;
    return new DepacketizeError(code, detail);
  }

  #addNal(nal: Buffer): DepacketizeError | undefined {
    if (this.#auDropped) return undefined;
    if (this.#bytes + nal.length > this.limits.maxAccessUnitBytes) {
      this.#nals = [];
      this.#bytes = 0;
      this.#auDropped = true;
      return new DepacketizeError('AccessUnitTooLarge', `access unit exceeds ${this.limits.maxAccessUnitBytes} bytes`);
    }
    this.#nals.push(nal);
    this.#bytes += nal.length;
    return undefined;
  }

  #flush(): void {
    const nals = this.#nals;
    const ts = this.#ts;
    this.#nals = [];
    this.#bytes = 0;
    this.#auDropped = false;
    if (nals.length === 0 || ts === undefined) return;
    this.onAccessUnit({ timestamp: this.#unwrap.unwrap(ts), keyframe: isH265Keyframe(nals), nals });
  }
}
