// The MP4 side of each codec table entry (codecs/*-format.ts `mp4`): its MSE token and codec
// string as go2rtc writes them (pkg/mp4/mime.go, pkg/h264/h264.go GetProfileLevelID), its
// sample entry, and its frames as samples.
import type { Frame, Track } from '../../core/media.js';
import { aacLcConfig } from '../../codecs/aac.js';
import { parseFmtp } from '../../codecs/fmtp.js';
import type { Mp4Use } from '../../codecs/format.js';
import { avc1Entry, hvc1Entry, mp4aEntry, opusEntry } from './sample-entries.js';

/** NAL units as an AVCC/HVCC sample: each after its 4-byte big-endian length. */
export function lengthPrefixed(f: Frame): Buffer[] {
  const out: Buffer[] = [];
  for (const nal of f.data) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(nal.length, 0);
    out.push(len, nal);
  }
  return out;
}

/**
 * go2rtc's H.264 codec string: profile, constraints and level from the SPS (else the fmtp's
 * profile-level-id), each replaced by go2rtc's default unless it is one of the values it keeps,
 * so that what it answers is always something browsers recognise.
 */
export function avc1CodecString(t: Track): string {
  let bytes = t.params?.sps?.subarray(1, 4);
  if (!bytes || bytes.length < 3) {
    const pli = parseFmtp(t.codec.fmtp ?? '')['profile-level-id'];
    bytes = pli && /^[0-9a-f]{6}$/i.test(pli) ? Buffer.from(pli, 'hex') : Buffer.from('640029', 'hex');
  }
  const profile = bytes[0] === 0x42 || bytes[0] === 0x4d ? bytes[0] : 0x64;
  const constraint = bytes[1] === 0xe0 || bytes[1] === 0x40 ? bytes[1] : 0x00;
  const level = bytes[2] === 30 || bytes[2] === 31 || bytes[2] === 40 ? bytes[2] : 41;
  return 'avc1.' + Buffer.from([profile, constraint, level]).toString('hex').toUpperCase();
}

export const H264_MP4: Mp4Use = {
  mseToken: 'avc1.640029',
  codecString: avc1CodecString,
  sampleEntry: (t) => (t.params?.sps && t.params.pps ? avc1Entry(t.params.sps, t.params.pps) : undefined),
  sample: lengthPrefixed,
};

export const H265_MP4: Mp4Use = {
  mseToken: 'hvc1.1.6.L153.B0',
  // go2rtc's constant: browsers take it for any Main-profile stream, Safari only with hvc1.
  codecString: () => 'hvc1.1.6.L153.B0',
  sampleEntry: (t) => (t.params?.vps && t.params.sps && t.params.pps ? hvc1Entry(t.params.vps, t.params.sps, t.params.pps) : undefined),
  sample: lengthPrefixed,
};

export const AAC_MP4: Mp4Use = {
  mseToken: 'mp4a.40.2',
  codecString: () => 'mp4a.40.2',
  sampleEntry(t) {
    const channels = t.codec.channels ?? 1;
    const config = parseFmtp(t.codec.fmtp ?? '')['config'] || aacLcConfig(t.codec.clockRate, channels);
    if (!config || !/^([0-9a-f]{2})+$/i.test(config)) return undefined;
    return mp4aEntry(Buffer.from(config, 'hex'), channels, t.codec.clockRate);
  },
  sample: (f) => f.data,
  fixedDuration: 1024,
};

export const OPUS_MP4: Mp4Use = {
  mseToken: 'opus',
  codecString: () => 'opus',
  sampleEntry: (t) => opusEntry(t.codec.channels ?? 2, t.codec.clockRate),
  sample: (f) => f.data,
};
