import { isKeyframe, NalType } from '../codecs/h264.js';
import { DepacketizeError } from './errors.js';
import { type AccessUnit, DEFAULT_NAL_LIMITS, NalAssembler, type NalDepacketizerLimits } from './nal-assembler.js';

// RFC 6184 non-interleaved mode: single NAL unit packets (5.6), STAP-A (5.7.1) and FU-A (5.8).

export type { AccessUnit };
export type H264DepacketizerLimits = NalDepacketizerLimits;
export const DEFAULT_H264_LIMITS: H264DepacketizerLimits = DEFAULT_NAL_LIMITS;

const FU_A = { label: 'FU-A', unfinished: 'FuaUnfinished', sequenceGap: 'FuaSequenceGap', withoutStart: 'FuaWithoutStart' } as const;
const STAP_A = { label: 'STAP-A', code: 'StapTruncated', headerBytes: 1, minNalBytes: 1 } as const;

/** H.264 access units from RTP packets; see NalAssembler for how AUs and errors are delivered. */
export class H264Depacketizer extends NalAssembler {
  constructor(onAccessUnit: (au: AccessUnit) => void, limits: H264DepacketizerLimits = DEFAULT_H264_LIMITS) {
    super(onAccessUnit, limits, FU_A);
  }

  protected payload(p: Buffer): DepacketizeError | undefined {
    if (p.length === 0) return new DepacketizeError('EmptyPayload', 'RTP packet without payload');
    const type = p[0]! & 0x1f;
    if (type >= 1 && type <= 23) return this.addNal(Buffer.from(p));
    if (type === NalType.StapA) return this.aggregate(p, STAP_A);
    if (type === NalType.FuA) return this.#fuA(p);
    return new DepacketizeError('UnsupportedNalType', `NAL unit type ${type}`);
  }

  protected isKeyframe(nals: readonly Buffer[]): boolean {
    return isKeyframe(nals);
  }

  #fuA(p: Buffer): DepacketizeError | undefined {
    if (p.length < 3) return new DepacketizeError('FuaTruncated', `FU-A of ${p.length} bytes`);
    const fuHeader = p[1]!;
    // Reconstructed NAL header: F and NRI of the FU indicator, type of the FU header.
    const header = (fuHeader & 0x80) !== 0 ? Buffer.from([(p[0]! & 0xe0) | (fuHeader & 0x1f)]) : undefined;
    return this.fragment(header, (fuHeader & 0x40) !== 0, p.subarray(2));
  }
}
