// What an MP4 sample entry needs from a sequence parameter set: the picture size (H.264 7.3.2.1.1,
// H.265 7.3.2.2) and, for hvcC, H.265's profile/tier/level and sample format.
import { BitReader, rbsp } from './bits.js';

export interface PictureSize {
  width: number;
  height: number;
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** Width and height after cropping; undefined for a set it cannot read. */
export function h264PictureSize(sps: Buffer): PictureSize | undefined {
  try {
    const r = new BitReader(rbsp(sps), 1);
    const profile = r.bits(8);
    r.skip(16); // constraint flags, level
    r.ue(); // seq_parameter_set_id
    let chroma = 1;
    let separate = 0;
    if (HIGH_PROFILES.has(profile)) {
      chroma = r.ue();
      if (chroma === 3) separate = r.bit();
      r.ue();
      r.ue(); // bit depths
      r.bit(); // qpprime_y_zero_transform_bypass
      if (r.bit()) for (let i = 0; i < (chroma !== 3 ? 8 : 12); i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) r.ue();
    else if (pocType === 1) {
      r.bit();
      r.se();
      r.se();
      const n = r.ue();
      for (let i = 0; i < n; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.bit(); // gaps_in_frame_num_value_allowed_flag
    const wMbs = r.ue() + 1;
    const hMaps = r.ue() + 1;
    const frameMbsOnly = r.bit();
    if (!frameMbsOnly) r.bit();
    r.bit(); // direct_8x8_inference_flag
    let [cl, cr, ct, cb] = [0, 0, 0, 0];
    if (r.bit()) [cl, cr, ct, cb] = [r.ue(), r.ue(), r.ue(), r.ue()];
    const arrayType = separate ? 0 : chroma;
    const subW = arrayType === 1 || arrayType === 2 ? 2 : 1;
    const subH = arrayType === 1 ? 2 : 1;
    const cropX = arrayType === 0 ? 1 : subW;
    const cropY = (arrayType === 0 ? 1 : subH) * (2 - frameMbsOnly);
    return { width: wMbs * 16 - cropX * (cl + cr), height: (2 - frameMbsOnly) * hMaps * 16 - cropY * (ct + cb) };
  } catch {
    return undefined;
  }
}

export interface H265SpsInfo extends PictureSize {
  /** general_profile_space … general_level_idc: the 12 bytes hvcC copies (ISO 14496-15 8.3.3.1). */
  profileTierLevel: Buffer;
  chromaFormat: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  maxSubLayers: number;
  temporalIdNested: number;
}

export function h265SpsInfo(sps: Buffer): H265SpsInfo | undefined {
  try {
    const raw = rbsp(sps);
    if (raw.length < 16) return undefined;
    const r = new BitReader(raw, 2);
    r.skip(4); // sps_video_parameter_set_id
    const maxSubMinus1 = r.bits(3);
    const temporalIdNested = r.bit();
    const profileTierLevel = Buffer.from(raw.subarray(3, 15));
    r.skip(96);
    const present: [number, number][] = [];
    for (let i = 0; i < maxSubMinus1; i++) present.push([r.bit(), r.bit()]);
    if (maxSubMinus1 > 0) r.skip(2 * (8 - maxSubMinus1));
    for (const [profile, level] of present) r.skip((profile ? 88 : 0) + (level ? 8 : 0));
    r.ue(); // sps_seq_parameter_set_id
    const chromaFormat = r.ue();
    if (chromaFormat === 3) r.bit();
    let width = r.ue();
    let height = r.ue();
    if (r.bit()) {
      const subW = chromaFormat === 1 || chromaFormat === 2 ? 2 : 1;
      const subH = chromaFormat === 1 ? 2 : 1;
      const [l, rr, t, b] = [r.ue(), r.ue(), r.ue(), r.ue()];
      width -= subW * (l + rr);
      height -= subH * (t + b);
    }
    const bitDepthLuma = r.ue() + 8;
    const bitDepthChroma = r.ue() + 8;
    return { width, height, profileTierLevel, chromaFormat, bitDepthLuma, bitDepthChroma, maxSubLayers: maxSubMinus1 + 1, temporalIdNested };
  } catch {
    return undefined;
  }
}
