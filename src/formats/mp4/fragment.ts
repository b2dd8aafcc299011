// One sample as one movie fragment (ISO 14496-12 8.8.4), as go2rtc writes them: a small moof
// (mfhd, traf with tfhd defaults, tfdt, trun) and an mdat. The mdat is the same bytes for every
// viewer of a muxer; only the moof's sequence number and decode time differ per viewer.
import { box } from './boxes.js';

/** sample_depends_on = 2 (an I picture; audio frames too). */
export const SYNC_SAMPLE = 0x02000000;
/** sample_depends_on = 1, sample_is_non_sync_sample. */
export const NON_SYNC_SAMPLE = 0x01010000;

/** The moof's fixed size: mfhd 16, traf 8 + tfhd 28 + tfdt 20 + trun 20. */
export const MOOF_SIZE = 100;

/** The mdat of one sample, made once: its header and the sample's parts. */
export function mdat(parts: readonly Buffer[]): Buffer {
  return box('mdat', ...parts);
}

export interface FragmentHeader {
  sequence: number;
  trackId: number;
  /** baseMediaDecodeTime in the track's timescale. */
  decodeTime: number;
  duration: number;
  /** The sample's size (the mdat's minus its 8-byte header). */
  size: number;
  flags: number;
}

/** The moof that goes right before its mdat (data offset = moof + mdat header). */
export function moof(h: FragmentHeader): Buffer {
  const b = Buffer.allocUnsafe(MOOF_SIZE);
  let o = 0;
  const w32 = (v: number) => {
    b.writeUInt32BE(v >>> 0, o);
    o += 4;
  };
  const head = (size: number, type: string) => {
    w32(size);
    b.write(type, o, 4, 'latin1');
    o += 4;
  };
  head(MOOF_SIZE, 'moof');
  head(16, 'mfhd');
  w32(0);
  w32(h.sequence);
  head(76, 'traf');
  head(28, 'tfhd');
  w32(0x020038); // default-base-is-moof, default duration, size and flags
  w32(h.trackId);
  w32(h.duration);
  w32(h.size);
  w32(h.flags);
  head(20, 'tfdt');
  w32(0x01000000); // version 1: 64-bit time
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(h.decodeTime))), o);
  o += 8;
  head(20, 'trun');
  w32(0x000001); // data-offset present
  w32(1);
  w32(MOOF_SIZE + 8);
  return b;
}
