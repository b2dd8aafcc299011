// H.265/HEVC NAL unit helpers (ITU-T H.265 7.3.1.2, table 7-1; RFC 7798 7.1 for sprop-vps/sps/pps).
import { parseSpropParameterSets } from './h264.js';
import { setsFirst } from './parameter-sets.js';

export const H265NalType = {
  /** IRAP pictures (BLA, IDR, CRA) are 16..21: a decoder can start at them. */
  IrapFirst: 16,
  IrapLast: 21,
  Vps: 32,
  Sps: 33,
  Pps: 34,
  Aud: 35,
  /** RFC 7798 payload structures. */
  Ap: 48,
  Fu: 49,
  Paci: 50,
} as const;

export interface H265Params {
  vps?: Buffer;
  sps?: Buffer;
  pps?: Buffer;
}

/** The 6-bit type in the first byte of the 2-byte NAL unit header. */
export function h265NalType(nal: Buffer): number {
  return ((nal[0] ?? 0) >> 1) & 0x3f;
}

export function isH265Keyframe(nals: readonly Buffer[]): boolean {
  return nals.some((n) => {
    const t = h265NalType(n);
    return t >= H265NalType.IrapFirst && t <= H265NalType.IrapLast;
  });
}

/** Picks VPS, SPS and PPS out of a list of NAL units (the last of each wins). */
export function findH265Params(nals: readonly Buffer[]): H265Params {
  const p: H265Params = {};
  for (const n of nals) {
    if (n.length < 3) continue;
    const t = h265NalType(n);
    if (t === H265NalType.Vps) p.vps = n;
    else if (t === H265NalType.Sps) p.sps = n;
    else if (t === H265NalType.Pps) p.pps = n;
  }
  return p;
}

/** Parameter sets from an SDP fmtp (sprop-vps, sprop-sps, sprop-pps; each a base64 list). */
export function h265ParamsFromFmtp(fmtp: Record<string, string>): H265Params {
  const nals = ['sprop-vps', 'sprop-sps', 'sprop-pps'].flatMap((k) => (fmtp[k] ? parseSpropParameterSets(fmtp[k]) : []));
  return findH265Params(nals);
}

/** VPS, SPS and PPS first (in-band, else from `known`), AUDs dropped: H.264's parameterSetsFirst for H.265. */
export function h265ParameterSetsFirst<A extends readonly Buffer[]>(nals: A, known: H265Params): A | Buffer[] {
  const inBand = findH265Params(nals);
  const head = [inBand.vps ?? known.vps, inBand.sps ?? known.sps, inBand.pps ?? known.pps].filter((n): n is Buffer => n !== undefined);
  return setsFirst(nals, head, (n) => {
    const t = h265NalType(n);
    return t === H265NalType.Vps || t === H265NalType.Sps || t === H265NalType.Pps || t === H265NalType.Aud;
  });
}

/**
 * Records in-band VPS/SPS/PPS into `params` and, for an access unit holding an IRAP picture,
 * returns it with VPS, SPS and PPS first so a viewer joining there can decode it.
 */
export function withH265ParameterSets(nals: Buffer[], params: H265Params): Buffer[] {
  const inBand = findH265Params(nals);
  if (inBand.vps) params.vps = inBand.vps;
  if (inBand.sps) params.sps = inBand.sps;
  if (inBand.pps) params.pps = inBand.pps;
  return isH265Keyframe(nals) ? h265ParameterSetsFirst(nals, params) : nals;
}
