// H.264 NAL unit helpers (ITU-T H.264 7.3.1, RFC 6184 8.1 for sprop-parameter-sets).
import { setsFirst } from './parameter-sets.js';

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
 * An access unit with SPS and PPS first (the in-band ones, else those in `known`) and without
 * AUDs: after the reordering an AUD would no longer come first, where H.264 requires it. The
 * input array itself when it already has that shape, so a second pass costs no copy.
 */
export function parameterSetsFirst<A extends readonly Buffer[]>(nals: A, known: H264Params): A | Buffer[] {
  const inBand = findParams(nals);
  const head = [inBand.sps ?? known.sps, inBand.pps ?? known.pps].filter((n): n is Buffer => n !== undefined);
  return setsFirst(nals, head, (n) => {
    const t = nalType(n);
    return t === NalType.Sps || t === NalType.Pps || t === NalType.Aud;
  });
}

/**
 * Records in-band SPS/PPS into `params` and, for an access unit holding an IDR, returns it with
 * SPS and PPS first so that a viewer joining at this keyframe can decode it.
 */
export function withParameterSets(nals: Buffer[], params: H264Params): Buffer[] {
  const inBand = findParams(nals);
  if (inBand.sps) params.sps = inBand.sps;
  if (inBand.pps) params.pps = inBand.pps;
  return isKeyframe(nals) ? parameterSetsFirst(nals, params) : nals;
}
