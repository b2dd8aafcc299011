const START_CODE = Buffer.from([0, 0, 0, 1]);

/** NAL units (H.264/H.265, without start codes) as an Annex B byte stream, for ffmpeg's h264/hevc demuxers. */
export function toAnnexB(nals: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const n of nals) parts.push(START_CODE, n);
  return Buffer.concat(parts);
}
