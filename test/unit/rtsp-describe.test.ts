import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeTracks } from '../../src/rtsp/describe.js';
import { parseSdp } from '../../src/rtsp/sdp.js';
import type { Track } from '../../src/core/media.js';

const SPS = Buffer.from('Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==', 'base64');
const PPS = Buffer.from('aM4PyA==', 'base64');

test('H.264 with parameter sets, Opus: payload types, controls, fmtp', () => {
  const tracks: Track[] = [
    { kind: 'video', codec: { name: 'H264', clockRate: 90000, fmtp: 'packetization-mode=0' }, params: { sps: SPS, pps: PPS } },
    { kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2, fmtp: 'sprop-stereo=1' } },
  ];
  const { media, sdp } = describeTracks(tracks, 'demo');
  assert.deepEqual(media.map((m) => [m.payloadType, m.control]), [[96, 'trackID=0'], [97, 'trackID=1']]);
  const parsed = parseSdp(sdp);
  assert.equal(parsed.name, 'demo');
  const [v, a] = parsed.media;
  assert.equal(v!.codec, 'H264');
  assert.equal(v!.control, 'trackID=0');
  assert.equal(v!.fmtpParams['packetization-mode'], '1', 'FU-A needs mode 1');
  assert.equal(v!.fmtpParams['profile-level-id'], '42C00D');
  assert.deepEqual(v!.sprop, [SPS, PPS]);
  assert.deepEqual([a!.codec, a!.clockRate, a!.channels, a!.fmtp], ['OPUS', 48000, 2, 'sprop-stereo=1']);
});

test('H.264 without known parameter sets keeps what the source announced', () => {
  const t: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000, fmtp: 'profile-level-id=640028;sprop-parameter-sets=Z2QAKA==,aO48gA==' } };
  const v = parseSdp(describeTracks([t]).sdp).media[0]!;
  assert.equal(v.fmtp, 'packetization-mode=1;profile-level-id=640028;sprop-parameter-sets=Z2QAKA==,aO48gA==');
});

test('H.265, AAC, G.711: sprop-vps/sps/pps, MPEG4-GENERIC config, static payload types', () => {
  const vps = Buffer.from([0x40, 0x01, 0x0c]);
  const sps = Buffer.from([0x42, 0x01, 0x01]);
  const pps = Buffer.from([0x44, 0x01, 0xc1]);
  const tracks: Track[] = [
    { kind: 'video', codec: { name: 'H265', clockRate: 90000 }, params: { vps, sps, pps } },
    { kind: 'audio', codec: { name: 'AAC', clockRate: 48000, channels: 1 } },
  ];
  const parsed = parseSdp(describeTracks(tracks).sdp);
  const [v, a] = parsed.media;
  assert.equal(v!.codec, 'H265');
  assert.deepEqual(v!.fmtpParams, { 'sprop-vps': vps.toString('base64'), 'sprop-sps': sps.toString('base64'), 'sprop-pps': pps.toString('base64') });
  assert.deepEqual([a!.codec, a!.clockRate, a!.channels], ['MPEG4-GENERIC', 48000, undefined], 'mono: no channel count');
  assert.equal(a!.fmtpParams.mode, 'AAC-hbr');
  assert.equal(a!.fmtpParams.sizelength, '13');
  assert.equal(a!.fmtpParams.config, '1188', 'AAC-LC 48 kHz mono');

  const fromSource: Track = { kind: 'audio', codec: { name: 'AAC', clockRate: 44100, channels: 2, fmtp: 'mode=AAC-hbr;config=1210' } };
  assert.equal(parseSdp(describeTracks([fromSource]).sdp).media[0]!.fmtpParams.config, '1210', "the source's config is kept");

  const g711: Track[] = [
    { kind: 'audio', codec: { name: 'PCMA', clockRate: 8000, channels: 1 } },
    { kind: 'audio', codec: { name: 'PCMU', clockRate: 8000, channels: 1 } },
    { kind: 'audio', codec: { name: 'PCMU', clockRate: 16000, channels: 1 } },
  ];
  assert.deepEqual(describeTracks(g711).media.map((m) => m.payloadType), [8, 0, 96]);
});
