import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSdp, resolveControl, writeSdp, parseFmtp } from '../../src/rtsp/sdp.js';
import { SdpError } from '../../src/rtsp/errors.js';
import { formatsOf, trackFromMedia, unsupportedReason } from '../../src/rtsp/receiver.js';
import { CAMERA_SDPS } from '../helpers/camera-sdp.js';
import { nalType } from '../../src/codecs/h264.js';

// What ffmpeg 5.1 writes in its ANNOUNCE for libx264 + libopus.
const FFMPEG_H264_OPUS = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=No Name',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'a=tool:libavformat 59.27.100',
  'm=video 0 RTP/AVP 96',
  'b=AS:200',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==,aM4PyA==; profile-level-id=42C00D',
  'a=control:streamid=0',
  'm=audio 0 RTP/AVP 97',
  'b=AS:64',
  'a=rtpmap:97 opus/48000/2',
  'a=control:streamid=1',
  '',
].join('\r\n');

// G.711 A-law at 8 kHz mono: ffmpeg uses static payload type 8 and writes no rtpmap.
const FFMPEG_PCMA = 'v=0\no=- 0 0 IN IP4 127.0.0.1\ns=No Name\nt=0 0\nm=audio 0 RTP/AVP 8\nb=AS:64\na=control:streamid=0\n';

test('parses the SDP ffmpeg announces for H.264 + Opus', { timeout: 5000 }, () => {
  const s = parseSdp(FFMPEG_H264_OPUS);
  assert.equal(s.name, 'No Name');
  assert.equal(s.media.length, 2);
  const [v, a] = s.media;
  assert.ok(v && a);
  assert.equal(v.kind, 'video');
  assert.equal(v.payloadType, 96);
  assert.equal(v.codec, 'H264');
  assert.equal(v.clockRate, 90000);
  assert.equal(v.control, 'streamid=0');
  assert.equal(v.fmtpParams['packetization-mode'], '1');
  assert.equal(v.fmtpParams['profile-level-id'], '42C00D');
  assert.deepEqual(v.sprop?.map(nalType), [7, 8]);
  assert.equal(v.sprop?.[1]?.toString('base64'), 'aM4PyA==');
  assert.equal(a.codec, 'OPUS');
  assert.equal(a.clockRate, 48000);
  assert.equal(a.channels, 2);
  assert.equal(a.fmtp, undefined);
});

const codecCases: Array<{ name: string; m: string; codec?: string; clockRate?: number; channels?: number; track?: string }> = [
  { name: 'static PCMA without rtpmap', m: 'm=audio 0 RTP/AVP 8', codec: 'PCMA', clockRate: 8000, channels: 1, track: 'audio:PCMA/8000/1' },
  { name: 'static PCMU without rtpmap', m: 'm=audio 0 RTP/AVP 0', codec: 'PCMU', clockRate: 8000, channels: 1, track: 'audio:PCMU/8000/1' },
  { name: 'PCMA with an rtpmap', m: 'm=audio 0 RTP/AVP 8\na=rtpmap:8 PCMA/8000', codec: 'PCMA', clockRate: 8000, track: 'audio:PCMA/8000/1' },
  { name: 'dynamic PCMU at 16 kHz', m: 'm=audio 0 RTP/AVP 101\na=rtpmap:101 PCMU/16000/1', codec: 'PCMU', clockRate: 16000, channels: 1, track: 'audio:PCMU/16000/1' },
  { name: 'lower-case opus', m: 'm=audio 0 RTP/AVP 111\na=rtpmap:111 opus/48000/2\na=fmtp:111 sprop-stereo=0', codec: 'OPUS', clockRate: 48000, channels: 2, track: 'audio:OPUS/48000/2' },
  { name: 'H.264', m: 'm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000', codec: 'H264', clockRate: 90000, track: 'video:H264/90000/-' },
  { name: 'AAC (not carried)', m: 'm=audio 0 RTP/AVP 97\na=rtpmap:97 MPEG4-GENERIC/44100/2', codec: 'MPEG4-GENERIC', clockRate: 44100, channels: 2 },
  { name: 'H.265', m: 'm=video 0 RTP/AVP 96\na=rtpmap:96 H265/90000', codec: 'H265', clockRate: 90000, track: 'video:H265/90000/-' },
  { name: 'first of several formats', m: 'm=audio 0 RTP/AVP 0 8 101\na=rtpmap:101 telephone-event/8000', codec: 'PCMU', clockRate: 8000, channels: 1, track: 'audio:PCMU/8000/1' },
  { name: 'unknown dynamic type without rtpmap', m: 'm=video 0 RTP/AVP 96' },
  { name: 'H264 rtpmap in an audio section', m: 'm=audio 0 RTP/AVP 96\na=rtpmap:96 H264/90000', codec: 'H264', clockRate: 90000 },
];

for (const c of codecCases) {
  test(`media section: ${c.name}`, { timeout: 5000 }, () => {
    const s = parseSdp(`v=0\ns=x\nt=0 0\n${c.m}\n`);
    const m = s.media[0]!;
    assert.equal(m.codec, c.codec);
    assert.equal(m.clockRate, c.clockRate);
    assert.equal(m.channels, c.channels);
    const t = trackFromMedia(m);
    const desc = t ? `${t.kind}:${t.codec.name}/${t.codec.clockRate}/${t.codec.channels ?? '-'}` : undefined;
    assert.equal(desc, c.track);
  });
}

test('the PCMA SDP ffmpeg writes gives a PCMA track', { timeout: 5000 }, () => {
  const m = parseSdp(FFMPEG_PCMA).media[0]!;
  assert.deepEqual(trackFromMedia(m), { kind: 'audio', codec: { name: 'PCMA', clockRate: 8000, channels: 1, fmtp: undefined } });
});

test('H.264 track params come from sprop-parameter-sets', { timeout: 5000 }, () => {
  const t = trackFromMedia(parseSdp(FFMPEG_H264_OPUS).media[0]!);
  assert.equal(t?.params?.sps?.toString('base64'), 'Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==');
  assert.equal(t?.params?.pps?.toString('base64'), 'aM4PyA==');
  assert.match(t?.codec.fmtp ?? '', /packetization-mode=1/);
});

test('fmtp: keys lower-cased, values split at the first =', { timeout: 5000 }, () => {
  assert.deepEqual(parseFmtp('Packetization-Mode=1;sprop-parameter-sets=Z0I=,aM4=; flag'), {
    'packetization-mode': '1',
    'sprop-parameter-sets': 'Z0I=,aM4=',
    flag: '',
  });
});

test('sprop with junk keeps only valid base64 NAL units', { timeout: 5000 }, () => {
  const m = parseSdp('v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 sprop-parameter-sets=Z0LADdo=,%%%,,aM4PyA==\n').media[0]!;
  assert.deepEqual(m.sprop?.map(nalType), [7, 8]);
});

const controls: Array<[base: string, control: string | undefined, expected: string]> = [
  ['rtsp://h:1/_publish/ab', 'streamid=0', 'rtsp://h:1/_publish/ab/streamid=0'],
  ['rtsp://h:1/_publish/ab/', 'streamid=1', 'rtsp://h:1/_publish/ab/streamid=1'],
  ['rtsp://h:1/p', '*', 'rtsp://h:1/p'],
  ['rtsp://h:1/p', undefined, 'rtsp://h:1/p'],
  ['rtsp://h:1/p', 'rtsp://other/x/trackID=1', 'rtsp://other/x/trackID=1'],
  ['rtsp://h:1/p', '/trackID=2', 'rtsp://h:1/p/trackID=2'],
];
for (const [base, control, expected] of controls) {
  test(`control ${control ?? '(none)'} against ${base}`, { timeout: 5000 }, () => {
    assert.equal(resolveControl(base, control), expected);
  });
}

const broken: Array<[string, string]> = [
  ['neither a version line nor media', 's=x\nc=IN IP4 0.0.0.0\n'],
  ['version 1', 'v=1\n'],
  ['a line without =', 'v=0\nhello\n'],
  ['m= without formats', 'v=0\nm=video 0 RTP/AVP\n'],
  ['m= with a bad port', 'v=0\nm=video x RTP/AVP 96\n'],
];
for (const [name, text] of broken) {
  test(`broken SDP (${name}) throws SdpError`, { timeout: 5000 }, () => {
    assert.throws(() => parseSdp(text), (e: unknown) => e instanceof SdpError && e.name === 'SdpError');
  });
}

test('writeSdp output parses back to the same media', { timeout: 5000 }, () => {
  const text = writeSdp({
    control: '*',
    media: [
      { kind: 'video', payloadType: 96, codec: 'H264', clockRate: 90000, fmtp: 'packetization-mode=1; sprop-parameter-sets=Z0I=,aM4=', control: 'trackID=0', direction: 'sendonly' },
      { kind: 'audio', payloadType: 111, codec: 'opus', clockRate: 48000, control: 'trackID=1' },
      { kind: 'audio', payloadType: 8, codec: 'PCMA', clockRate: 8000, channels: 1, control: 'trackID=2' },
    ],
  });
  assert.match(text, /^v=0\r\n/);
  assert.match(text, /a=rtpmap:111 opus\/48000\/2\r\n/);
  const s = parseSdp(text);
  assert.equal(s.control, '*');
  assert.deepEqual(
    s.media.map((m) => [m.kind, m.payloadType, m.codec, m.clockRate, m.channels ?? 1, m.control, m.direction]),
    [
      ['video', 96, 'H264', 90000, 1, 'trackID=0', 'sendonly'],
      ['audio', 111, 'OPUS', 48000, 2, 'trackID=1', undefined],
      ['audio', 8, 'PCMA', 8000, 1, 'trackID=2', undefined],
    ],
  );
  assert.equal(s.media[0]?.fmtpParams['sprop-parameter-sets'], 'Z0I=,aM4=');
});

// Issue 13 item 10: DESCRIBE answers of real cameras that other players accept.
for (const shape of CAMERA_SDPS) {
  test(`camera SDP (${shape.name}) parses and its H.264 format becomes the track`, { timeout: 5000 }, () => {
    const s = parseSdp(shape.sdp);
    const video = s.media.find((m) => m.kind === 'video')!;
    const chosen = formatsOf(video).find((f) => unsupportedReason(f) === undefined);
    assert.equal(chosen?.payloadType, shape.h264Pt);
    assert.equal(chosen?.codec, 'H264');
    assert.equal(trackFromMedia(chosen!)?.codec.name, 'H264');
    assert.equal(chosen?.control, 'track1');
    for (const other of s.media.filter((m) => m !== video)) assert.ok(unsupportedReason(other), 'the other section is skipped, with a reason');
  });
}

test('a vendor section with non-numeric formats has no payload types and names its formats', { timeout: 5000 }, () => {
  const m = parseSdp(CAMERA_SDPS[0]!.sdp).media[1]!;
  assert.equal(m.kind, 'application/x-vendor');
  assert.deepEqual(m.formats, ['smart/0/25000']);
  assert.deepEqual(m.payloadTypes, []);
  assert.equal(m.payloadType, -1);
  assert.equal(m.codec, undefined);
  assert.match(unsupportedReason(m)!, /no RTP payload type \(formats smart\/0\/25000\)/);
});

test('each payload type of a multi-codec m= line is described with its own rtpmap and fmtp', { timeout: 5000 }, () => {
  const m = parseSdp(CAMERA_SDPS[2]!.sdp).media[0]!;
  assert.deepEqual(m.payloadTypes, [96, 97]);
  assert.deepEqual(formatsOf(m).map((f) => [f.payloadType, f.codec, f.fmtpParams['packetization-mode']]), [
    [96, 'MP4V-ES', undefined],
    [97, 'H264', '1'],
  ]);
  assert.match(unsupportedReason(m)!, /MP4V-ES is not carried/);
});

test('a payload type over 127 makes that section unusable, not the SDP', { timeout: 5000 }, () => {
  const s = parseSdp('v=0\nm=video 0 RTP/AVP 200\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n');
  assert.deepEqual(s.media.map((m) => m.payloadTypes), [[], [96]]);
});
