// H.265 over WebRTC: which offered H265 payload type can decode the stream, and the fmtp we
// answer it with. Facts from RFC 7798 (7.1 the parameters and their defaults, 7.2.2 offer/answer),
// draft-ietf-avtcore-hevc-webrtc (2.1) and what libwebrtc (Chrome 136+, Safari 18) does:
// - browsers offer `level-id=<N>;profile-id=<1|2>;tier-flag=0;tx-mode=SRST`, one payload type per
//   profile; level-id follows the machine's hardware decoder (93 … 180 seen); Safari may offer
//   H265 without any fmtp, which means the defaults: Main (1), Main tier (0), level 3.1 (93), SRST.
// - profile-id and tier-flag are symmetric: the answer repeats the offer's. level-id is not
//   compared by browsers; RFC 7798 says the answer's is the offer's or lower, and for a sendonly
//   answer it is the highest level we send, so we answer min(offer, stream).
// - sprop-vps/sps/pps must not be in the answer: WebRTC receivers take parameter sets in band
//   only (in front of every IRAP picture, which the packetizer makes sure of).
import { h265SpsInfo } from '../../formats/mp4/sps.js';

/** Profile, tier and level as RFC 7798's fmtp writes them (level-id = 30 × the level). */
export interface H265Ptl {
  profile: number;
  tier: number;
  level: number;
}

/** What the offer means when it leaves a parameter out (RFC 7798 7.1). */
const DEFAULTS: H265Ptl = { profile: 1, tier: 0, level: 93 };

/** What a stream's SPS says of itself, for matching. */
export interface H265StreamPtl extends H265Ptl {
  /** general_profile_compatibility_flag[j]: a decoder of profile j decodes this stream. */
  compatible: (profile: number) => boolean;
}

function fmtpInt(fmtp: Record<string, string>, key: string, max: number, fallback: number): number | undefined {
  const v = fmtp[key];
  if (v === undefined) return fallback;
  if (!/^\d{1,3}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= max ? n : undefined;
}

/** The offered profile, tier and level, defaults filled in; undefined when one is not a number we can read. */
export function offeredPtl(fmtp: Record<string, string>): H265Ptl | undefined {
  const profile = fmtpInt(fmtp, 'profile-id', 31, DEFAULTS.profile);
  const tier = fmtpInt(fmtp, 'tier-flag', 1, DEFAULTS.tier);
  const level = fmtpInt(fmtp, 'level-id', 255, DEFAULTS.level);
  // A nonzero profile-space is not a profile any decoder we know of takes.
  const space = fmtpInt(fmtp, 'profile-space', 3, 0);
  if (profile === undefined || tier === undefined || level === undefined || space !== 0) return undefined;
  return { profile, tier, level };
}

/** The stream's profile, tier and level from its SPS (profile_tier_level, H.265 7.3.3). */
export function streamPtl(sps: Buffer | undefined): H265StreamPtl | undefined {
  const ptl = sps && h265SpsInfo(sps)?.profileTierLevel;
  if (!ptl || ptl.length < 12) return undefined;
  const flags = ptl.readUInt32BE(1);
  return {
    profile: ptl[0]! & 0x1f,
    tier: (ptl[0]! >> 5) & 1,
    level: ptl[11]!,
    compatible: (p) => p >= 0 && p < 32 && ((flags >>> (31 - p)) & 1) === 1,
  };
}

/**
 * How well an offered payload type fits the stream: undefined when its decoder cannot take it
 * (another profile the stream is not compatible with, or a higher tier); else 2 when the
 * offered level covers the stream's, plus 1 for the stream's own profile (not only a compatible
 * one, as Main in a Main 10 payload type).
 */
export function h265Fit(offered: H265Ptl, stream: H265StreamPtl): number | undefined {
  const decodes = offered.profile === stream.profile || stream.compatible(offered.profile);
  if (!decodes || stream.tier > offered.tier) return undefined;
  return (stream.level <= offered.level ? 2 : 0) + (offered.profile === stream.profile ? 1 : 0);
}

/**
 * The fmtp answering an offered H265 payload type: its profile and tier, the lower of its level
 * and the stream's, and tx-mode=SRST when the offer names it (what we send: one RTP stream).
 */
export function h265AnswerFmtp(offerFmtp: Record<string, string>, stream: H265StreamPtl | undefined): Record<string, string> {
  const o = offeredPtl(offerFmtp) ?? DEFAULTS;
  const level = stream ? Math.min(o.level, stream.level) : o.level;
  const out: Record<string, string> = { 'level-id': String(level), 'profile-id': String(o.profile), 'tier-flag': String(o.tier) };
  if (offerFmtp['tx-mode'] !== undefined) out['tx-mode'] = 'SRST';
  return out;
}
