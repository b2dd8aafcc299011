import { DepacketizeError, type DepacketizeErrorCode } from './errors.js';
import type { RtpPacket } from './packet.js';
import { TimestampUnwrapper } from './timestamp.js';

// What H.264 (RFC 6184) and H.265 (RFC 7798) depacketizing have in common: NALs grouped into
// access units by timestamp and marker bit, fragmented NALs rebuilt across packets, aggregates
// split, and the size limits. The codec classes only read their payload headers.

export interface AccessUnit {
  /** RTP timestamp unwrapped (monotonic, not wrapped at 2^32), 90 kHz. */
  timestamp: number;
  keyframe: boolean;
  /** NAL units without start codes, each in its own buffer (not views into socket chunks). */
  nals: Buffer[];
}

export interface NalDepacketizerLimits {
  /** Largest NAL a fragmentation unit may reassemble to. */
  maxNalBytes: number;
  /** Largest access unit (sum of its NALs). */
  maxAccessUnitBytes: number;
}

export const DEFAULT_NAL_LIMITS: NalDepacketizerLimits = {
  maxNalBytes: 4 * 1024 * 1024,
  maxAccessUnitBytes: 8 * 1024 * 1024,
};

/** How a codec names its fragmentation units in errors ('FU-A', 'FuaUnfinished'; 'FU', 'FuUnfinished'). */
export interface FuNames {
  label: string;
  unfinished: DepacketizeErrorCode;
  sequenceGap: DepacketizeErrorCode;
  withoutStart: DepacketizeErrorCode;
}

/** How a codec's aggregation packet (STAP-A, AP) is laid out and named. */
export interface AggregateFormat {
  label: string;
  code: DepacketizeErrorCode;
  /** Bytes of payload header before the first size field. */
  headerBytes: number;
  /** Smallest NAL size accepted (a NAL header at least). */
  minNalBytes: number;
}

interface Fragmented {
  /** Reconstructed NAL header. */
  header: Buffer;
  parts: Buffer[];
  bytes: number;
}

/**
 * Groups NALs into access units: an AU ends with the marker bit, or when a packet with another
 * timestamp arrives (a lost marker). push() delivers finished AUs to `onAccessUnit`, then throws a
 * DepacketizeError if this packet was unusable; by then the broken part has been dropped and the
 * next packet starts clean.
 */
export abstract class NalAssembler {
  #ts: number | undefined;
  #nals: Buffer[] = [];
  #bytes = 0;
  /** The current AU overflowed: ignore the rest of it. */
  #auDropped = false;
  #fu: Fragmented | undefined;
  /** The current FU was dropped: its remaining fragments are ignored without more errors. */
  #fuDropped = false;
  #lastSeq: number | undefined;
  #unwrap = new TimestampUnwrapper();

  protected constructor(
    private readonly onAccessUnit: (au: AccessUnit) => void,
    private readonly limits: NalDepacketizerLimits,
    private readonly fuNames: FuNames,
  ) {}

  /** Reads one RTP payload, adding its NALs with addNal/aggregate/fragment. */
  protected abstract payload(p: Buffer): DepacketizeError | undefined;
  protected abstract isKeyframe(nals: readonly Buffer[]): boolean;

  push(pkt: RtpPacket): void {
    const fu = this.fuNames.label;
    let error: DepacketizeError | undefined;
    const gap = this.#lastSeq !== undefined && pkt.sequenceNumber !== ((this.#lastSeq + 1) & 0xffff);
    this.#lastSeq = pkt.sequenceNumber;

    if (this.#ts !== undefined && pkt.timestamp !== this.#ts) {
      if (this.#fu) error = this.#dropFu(this.fuNames.unfinished, `a new timestamp began before the ${fu} end fragment`);
      this.#flush();
      // Fragments of a NAL dropped in the previous AU cannot continue into this one.
      this.#fuDropped = false;
    }
    this.#ts = pkt.timestamp;
    if (gap && this.#fu) error = this.#dropFu(this.fuNames.sequenceGap, `packet ${pkt.sequenceNumber} follows a gap inside a ${fu}`);

    error = this.payload(pkt.payload) ?? error;

    if (pkt.marker) {
      if (this.#fu) error = this.#dropFu(this.fuNames.unfinished, `marker bit set before the ${fu} end fragment`) ?? error;
      this.#flush();
    }
    if (error) throw error;
  }

  /** Adds every NAL of an aggregation packet, or none if it is truncated. */
  protected aggregate(p: Buffer, f: AggregateFormat): DepacketizeError | undefined {
    // Parse the whole aggregate first so a truncated one adds nothing.
    const nals: Buffer[] = [];
    let off = f.headerBytes;
    while (off < p.length) {
      if (off + 2 > p.length) return new DepacketizeError(f.code, `size field cut at byte ${off}`);
      const size = p.readUInt16BE(off);
      off += 2;
      if (size < f.minNalBytes || off + size > p.length) return new DepacketizeError(f.code, `NAL of ${size} bytes at ${off} in ${p.length}`);
      nals.push(Buffer.from(p.subarray(off, off + size)));
      off += size;
    }
    if (nals.length === 0) return new DepacketizeError(f.code, `${f.label} without NAL units`);
    for (const n of nals) {
      const e = this.addNal(n);
      if (e) return e;
    }
    return undefined;
  }

  /**
   * One fragment of a fragmented NAL: `startHeader` is the rebuilt NAL header on a start
   * fragment, undefined on the others.
   */
  protected fragment(startHeader: Buffer | undefined, end: boolean, data: Buffer): DepacketizeError | undefined {
    const label = this.fuNames.label;
    let error: DepacketizeError | undefined;
    if (startHeader) {
      if (this.#fu) error = this.#dropFu(this.fuNames.unfinished, `a ${label} start arrived before the previous one ended`);
      this.#fuDropped = false;
      this.#fu = { header: startHeader, parts: [], bytes: startHeader.length };
    } else if (!this.#fu) {
      if (this.#fuDropped) {
        if (end) this.#fuDropped = false;
        return undefined;
      }
      return new DepacketizeError(this.fuNames.withoutStart, `${label} fragment without a start fragment`);
    }
    const fu = this.#fu!;
    if (fu.bytes + data.length > this.limits.maxNalBytes) {
      return this.#dropFu('NalTooLarge', `${label} exceeds ${this.limits.maxNalBytes} bytes`, !end) ?? error;
    }
    fu.parts.push(data);
    fu.bytes += data.length;
    if (!end) return error;
    this.#fu = undefined;
    return this.addNal(Buffer.concat([fu.header, ...fu.parts], fu.bytes)) ?? error;
  }

  /** Forgets a half-built FU; `skipRest` ignores its remaining fragments silently. */
  #dropFu(code: DepacketizeErrorCode, detail: string, skipRest = true): DepacketizeError | undefined {
    if (!this.#fu) return undefined;
    this.#fu = undefined;
    this.#fuDropped = skipRest;
    return new DepacketizeError(code, detail);
  }

  protected addNal(nal: Buffer): DepacketizeError | undefined {
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
    this.onAccessUnit({ timestamp: this.#unwrap.unwrap(ts), keyframe: this.isKeyframe(nals), nals });
  }
}
