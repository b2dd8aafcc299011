// The init segment of a fragmented MP4 (ISO 14496-12 8.8): ftyp and a moov whose tracks have
// empty sample tables, with an mvex that announces fragments. The layout is go2rtc's
// (pkg/mp4/muxer.go GetInit), brands iso5/iso6/mp41.
import { UNITY_MATRIX, box, fullBox, u16, u32, zeros } from './boxes.js';
import type { SampleEntry } from './sample-entries.js';

export interface InitTrack {
  /** track_ID, from 1. */
  id: number;
  kind: 'video' | 'audio';
  /** Ticks per second of its samples' times: 90000 for video, the sample rate for audio. */
  timescale: number;
  entry: SampleEntry;
}

const FTYP = box('ftyp', Buffer.from('iso5', 'latin1'), u32(512), Buffer.from('iso5iso6mp41', 'latin1'));

function trak(t: InitTrack): Buffer {
  const video = t.kind === 'video';
  const tkhd = fullBox(
    'tkhd',
    0,
    3, // enabled, in movie
    u32(0, 0, t.id, 0, 0), // creation, modification, track_ID, reserved, duration
    zeros(8),
    u16(0, video ? 0 : 1, video ? 0 : 0x0100, 0), // layer, alternate_group, volume, reserved
    UNITY_MATRIX,
    u32((t.entry.width ?? 0) * 0x10000, (t.entry.height ?? 0) * 0x10000),
  );
  const mdhd = fullBox('mdhd', 0, 0, u32(0, 0, t.timescale, 0), u16(0x55c4, 0)); // language "und"
  const hdlr = fullBox('hdlr', 0, 0, u32(0), Buffer.from(video ? 'vide' : 'soun', 'latin1'), zeros(12), Buffer.from(video ? 'VideoHandler\0' : 'SoundHandler\0', 'latin1'));
  const header = video ? fullBox('vmhd', 0, 1, zeros(8)) : fullBox('smhd', 0, 0, zeros(4));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32(1), t.entry.box),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0, 0)),
    fullBox('stco', 0, 0, u32(0)),
  );
  return box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', header, dinf, stbl)));
}

export function initSegment(tracks: readonly InitTrack[]): Buffer {
  const mvhd = fullBox(
    'mvhd',
    0,
    0,
    u32(0, 0, 1000, 0, 0x00010000), // creation, modification, timescale, duration, rate 1.0
    u16(0x0100, 0), // volume 1.0, reserved
    zeros(8),
    UNITY_MATRIX,
    zeros(24),
    u32(0xffffffff), // next_track_ID
  );
  const mvex = box('mvex', ...tracks.map((t) => fullBox('trex', 0, 0, u32(t.id, 1, 0, 0, 0))));
  return Buffer.concat([FTYP, box('moov', mvhd, ...tracks.map(trak), mvex)]);
}
