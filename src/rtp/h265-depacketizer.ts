import { H265NalType, isH265Keyframe } from '../codecs/h265.js';
import { DepacketizeError } from './errors.js';
import { type AccessUnit, DEFAULT_NAL_LIMITS, NalAssembler, type NalDepacketizerLimits } from './nal-assembler.js';

// RFC 7798 without DONL fields (sprop-max-don-diff 0, which is what cameras send): single NAL unit
// packets (4.4.1), aggregation packets (4.4.2) and fragmentation units (4.4.3). PACI is not used.

export type H265DepacketizerLimits = NalDepacketizerLimits;
export const DEFAULT_H265_LIMITS: H265DepacketizerLimits = DEFAULT_NAL_LIMITS;

/** The 2-byte payload header plus the smallest NAL payload worth a byte. */
const MIN_PAYLOAD = 3;

const FU = { label: 'FU', unfinished: 'FuUnfinished', sequenceGap: 'FuSequenceGap', withoutStart: 'FuWithoutStart' } as const;
const AP = { label: 'AP', code: 'ApTruncated', headerBytes: 2, minNalBytes: 2 } as const;

/** H.265 access units from RTP packets; see NalAssembler for how AUs and errors are delivered. */
export class H265Depacketizer extends NalAssembler {
  constructor(onAccessUnit: (au: AccessUnit) => void, limits: H265DepacketizerLimits = DEFAULT_H265_LIMITS) {
    super(onAccessUnit, limits, FU);
  }

  protected payload(p: Buffer): DepacketizeError | undefined {
    if (p.length < MIN_PAYLOAD) return new DepacketizeError('EmptyPayload', `H.265 payload of ${p.length} bytes`);
    const type = (p[0]! >> 1) & 0x3f;
    if (type < H265NalType.Ap) return this.addNal(Buffer.from(p));
    if (type === H265NalType.Ap) return this.aggregate(p, AP);
    if (type === H265NalType.Fu) return this.#fu(p);
    return new DepacketizeError('UnsupportedNalType', `H.265 payload type ${type}`);
  }

  protected isKeyframe(nals: readonly Buffer[]): boolean {
    return isH265Keyframe(nals);
  }

  #fu(p: Buffer): DepacketizeError | undefined {
    if (p.length < 4) return new DepacketizeError('FuTruncated', `FU of ${p.length} bytes`);
    const fuHeader = p[2]!;
    // F bit and LayerId high bit from the payload header, the type from the FU header.
    const header = (fuHeader & 0x80) !== 0 ? Buffer.from([(p[0]! & 0x81) | ((fuHeader & 0x3f) << 1), p[1]!]) : undefined;
    return this.fragment(header, (fuHeader & 0x40) !== 0, Buffer.from(p.subarray(3)));
  }
}
