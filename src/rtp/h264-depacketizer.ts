import { isKeyframe, NalType } from '../codecs/h264.js';
import { DepacketizeError } from './errors.js';
import type { RtpPacket } from './packet.js';
import { TimestampUnwrapper } from './timestamp.js';

// RFC 6184 non-interleaved mode: single NAL unit packets (5.6), STAP-A (5.7.1) and FU-A (5.8).

export interface AccessUnit {
  /** RTP timestamp unwrapped (monotonic, not wrapped at 2^32), 90 kHz. */
  timestamp: number;
  keyframe: boolean;
  /** NAL units without start codes, each in its own buffer (not views into socket chunks). */
  nals: Buffer[];
}

export interface H264DepacketizerLimits {
  /** Largest NAL a FU-A may reassemble to. */
  maxNalBytes: number;
  /** Largest access unit (sum of its NALs). */
  maxAccessUnitBytes: number;
}

export const DEFAULT_H264_LIMITS: H264DepacketizerLimits = {
  maxNalBytes: 4 * 1024 * 1024,
  maxAccessUnitBytes: 8 * 1024 * 1024,
};

interface Fragmented {
  /** Reconstructed NAL header: F and NRI of the FU indicator, type of the FU header. */
  header: number;
  parts: Buffer[];
  bytes: number;
}

/**
 * Groups NALs into access units: an AU ends with the marker bit, or when a packet with another
 * timestamp arrives (a lost marker). push() delivers finished AUs to `onAccessUnit`, then throws a
 * DepacketizeError if this packet was unusable; by then the broken part has been dropped and the
 * next packet starts clean.
 */
export class H264Depacketizer {
  #ts: number | undefined;
  #nals: Buffer[] = [];
  #bytes = 0;
  /** The current AU overflowed: ignore the rest of it. */
  #auDropped = false;
  #fu: Fragmented | undefined;
  /** The current FU-A was dropped: its remaining fragments are ignored without more errors. */
  #fuDropped = false;
  #lastSeq: number | undefined;
  #unwrap = new TimestampUnwrapper();

  constructor(
    private readonly onAccessUnit: (au: AccessUnit) => void,
    private readonly limits: H264DepacketizerLimits = DEFAULT_H264_LIMITS,
  ) {}

  push(pkt: RtpPacket): void {
    let error: DepacketizeError | undefined;
    const gap = this.#lastSeq !== undefined && pkt.sequenceNumber !== ((this.#lastSeq + 1) & 0xffff);
    this.#lastSeq = pkt.sequenceNumber;

    if (this.#ts !== undefined && pkt.timestamp !== this.#ts) {
      if (this.#fu) error = this.#dropFu('FuaUnfinished', 'a new timestamp began before the FU-A end fragment');
      this.#flush();
      // Fragments of a NAL dropped in the previous AU cannot continue into this one.
      this.#fuDropped = false;
    }
    this.#ts = pkt.timestamp;
    if (gap && this.#fu) error = this.#dropFu('FuaSequenceGap', `packet ${pkt.sequenceNumber} follows a gap inside a FU-A`);

    error = this.#payload(pkt.payload) ?? error;

    if (pkt.marker) {
      if (this.#fu) error = this.#dropFu('FuaUnfinished', 'marker bit set before the FU-A end fragment') ?? error;
      this.#flush();
    }
    if (error) throw error;
  }

  #payload(p: Buffer): DepacketizeError | undefined {
    if (p.length === 0) return new DepacketizeError('EmptyPayload', 'RTP packet without payload');
    const type = p[0]! & 0x1f;
    if (type >= 1 && type <= 23) return this.#addNal(Buffer.from(p));
    if (type === NalType.StapA) return this.#stapA(p);
    if (type === NalType.FuA) return this.#fuA(p);
    return new DepacketizeError('UnsupportedNalType', `NAL unit type ${type}`);
  }

  #stapA(p: Buffer): DepacketizeError | undefined {
    // Parse the whole aggregate first so a truncated one adds nothing.
    const nals: Buffer[] = [];
    let off = 1;
    while (off < p.length) {
      if (off + 2 > p.length) return new DepacketizeError('StapTruncated', `size field cut at byte ${off}`);
      const size = p.readUInt16BE(off);
      off += 2;
      if (size === 0 || off + size > p.length) return new DepacketizeError('StapTruncated', `NAL of ${size} bytes at ${off} in ${p.length}`);
      nals.push(Buffer.from(p.subarray(off, off + size)));
      off += size;
    }
    if (nals.length === 0) return new DepacketizeError('StapTruncated', 'STAP-A without NAL units');
    for (const n of nals) {
      const e = this.#addNal(n);
      if (e) return e;
    }
    return undefined;
  }

  #fuA(p: Buffer): DepacketizeError | undefined {
    if (p.length < 3) return new DepacketizeError('FuaTruncated', `FU-A of ${p.length} bytes`);
    const fuHeader = p[1]!;
    const start = (fuHeader & 0x80) !== 0;
    const end = (fuHeader & 0x40) !== 0;
    const data = p.subarray(2);
    let error: DepacketizeError | undefined;
    if (start) {
      if (this.#fu) error = this.#dropFu('FuaUnfinished', 'a FU-A start arrived before the previous one ended');
      this.#fuDropped = false;
      this.#fu = { header: (p[0]! & 0xe0) | (fuHeader & 0x1f), parts: [], bytes: 1 };
    } else if (!this.#fu) {
      if (this.#fuDropped) {
        if (end) this.#fuDropped = false;
        return undefined;
      }
      return new DepacketizeError('FuaWithoutStart', 'FU-A fragment without a start fragment');
    }
    const fu = this.#fu!;
    if (fu.bytes + data.length > this.limits.maxNalBytes) {
      return this.#dropFu('NalTooLarge', `FU-A exceeds ${this.limits.maxNalBytes} bytes`, !end) ?? error;
    }
    fu.parts.push(data);
    fu.bytes += data.length;
    if (!end) return error;
    this.#fu = undefined;
    return this.#addNal(Buffer.concat([Buffer.from([fu.header]), ...fu.parts], fu.bytes)) ?? error;
  }

  /** Forgets a half-built FU-A; `skipRest` ignores its remaining fragments silently. */
  #dropFu(code: 'FuaUnfinished' | 'FuaSequenceGap' | 'NalTooLarge', detail: string, skipRest = true): DepacketizeError | undefined {
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
    this.onAccessUnit({ timestamp: this.#unwrap.unwrap(ts), keyframe: isKeyframe(nals), nals });
  }
}
