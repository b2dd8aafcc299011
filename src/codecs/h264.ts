// H.264 NAL unit helpers (ITU-T H.264 7.3.1, RFC 6184 8.1 for sprop-parameter-sets).

export const NalType = {
  NonIdr: 1,
  Idr: 5,
  Sei: 6,
  Sps: 7,
  Pps: 8,
  Aud: 9,
  StapA: 24,
  FuA: 28,
} as const;

export interface H264Params {
  sps?: Buffer;
  pps?: Buffer;
}

export function nalType(nal: Buffer): number {
  return (nal[0] ?? 0) & 0x1f;
}

/** A keyframe is an access unit that holds an IDR slice: a decoder can start there. */
export function isKeyframe(nals: readonly Buffer[]): boolean {
  return nals.some((n) => nalType(n) === NalType.Idr);
}

/** sprop-parameter-sets is a comma-separated list of base64 NAL units (SPS and PPS, maybe more). */
export function parseSpropParameterSets(value: string): Buffer[] {
  const out: Buffer[] = [];
  for (const part of value.split(',')) {
    const b64 = part.trim();
    if (!b64) continue;
    // Buffer.from(base64) silently skips junk, so check the alphabet first.
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    const nal = Buffer.from(b64, 'base64');
    if (nal.length > 0) out.push(nal);
  }
  return out;
}

/** Picks the SPS and PPS out of a list of NAL units (the last of each wins). */
export function findParams(nals: readonly Buffer[]): H264Params {
  const p: H264Params = {};
  for (const n of nals) {
    const t = nalType(n);
    if (t === NalType.Sps) p.sps = n;
    else if (t === NalType.Pps) p.pps = n;
  }
  return p;
}

/** profile-level-id for an SDP fmtp line: the three bytes after the SPS NAL header, in hex. */
export function profileLevelId(sps: Buffer): string | undefined {
  if (sps.length < 4) return undefined;
  return sps.subarray(1, 4).toString('hex').toUpperCase();
}

/**
 * Records in-band SPS/PPS into `params` and, for an access unit holding an IDR, returns it with
 * SPS and PPS first so that a viewer joining at this keyframe can decode it. AUDs are dropped
 * from keyframes: after the reordering they would no longer be first, where H.264 requires them.
 */
export function withParameterSets(nals: Buffer[], params: H264Params): Buffer[] {
  const inBand = findParams(nals);
  if (inBand.sps) params.sps = inBand.sps;
  if (inBand.pps) params.pps = inBand.pps;
  if (!isKeyframe(nals)) return nals;
  const rest = nals.filter((n) => {
    const t = nalType(n);
    return t !== NalType.Sps && t !== NalType.Pps && t !== NalType.Aud;
  });
  const head: Buffer[] = [];
  if (params.sps) head.push(params.sps);
  if (params.pps) head.push(params.pps);
  return [...head, ...rest];
}
