import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CODECS, CODEC_LIST, codecFormat, formatByEncoding, formatByQueryName, formatByStaticPayloadType, webrtcFormats } from '../../src/codecs/table.js';
import type { MediaUnit } from '../../src/codecs/format.js';
import { ALL_CODECS, type CodecName, type Frame, type Track } from '../../src/core/media.js';
import { parseRtp, writeRtpHeader } from '../../src/rtp/packet.js';
import { withTrackParameterSets } from '../../src/rtp/h264-packetizer.js';
import { withTrackH265ParameterSets } from '../../src/rtp/h265-packetizer.js';
import { describeTracks, mediaForTrack } from '../../src/rtsp/describe.js';
import { parseMediaQuery } from '../../src/rtsp/play-url.js';
import { RtpReceiver, trackFromMedia, unsupportedReason } from '../../src/rtsp/receiver.js';
import { parseSdp } from '../../src/rtsp/sdp.js';
import { parseOffer } from '../../src/outputs/webrtc/offer.js';
import { scanOffer } from '../../src/outputs/webrtc/ndc-sdp.js';
import { payloadBytes } from '../../src/rtp/payload.js';

const SPS = Buffer.from('Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==', 'base64');
const PPS = Buffer.from('aM4PyA==', 'base64');
const h265 = (type: number, len: number) => Buffer.concat([Buffer.from([type << 1, 1]), Buffer.alloc(len, 0x5a)]);
const VPS = h265(32, 10);
const HSPS = h265(33, 12);
const HPPS = h265(34, 4);

// A Record: a codec added to the table without a sample track here does not compile.
const SAMPLES: Record<CodecName, { track: Track; keyframe: Buffer[]; delta: Buffer[] }> = {
  H264: {
    track: { kind: 'video', codec: { name: 'H264', clockRate: 90000 }, params: { sps: SPS, pps: PPS } },
    keyframe: [SPS, PPS, Buffer.concat([Buffer.from([0x65]), Buffer.alloc(4000, 7)])],
    delta: [Buffer.from([0x41, 1, 2, 3])],
  },
  H265: {
    track: { kind: 'video', codec: { name: 'H265', clockRate: 90000 }, params: { vps: VPS, sps: HSPS, pps: HPPS } },
    keyframe: [VPS, HSPS, HPPS, h265(19, 3000)],
    delta: [h265(1, 50)],
  },
  OPUS: { track: { kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2, fmtp: 'sprop-stereo=1' } }, keyframe: [Buffer.from([0xfc, 1, 2, 3])], delta: [Buffer.from([0xfc, 4])] },
  AAC: { track: { kind: 'audio', codec: { name: 'AAC', clockRate: 44100, channels: 2 } }, keyframe: [Buffer.alloc(2000, 3)], delta: [Buffer.alloc(300, 4)] },
  PCMA: { track: { kind: 'audio', codec: { name: 'PCMA', clockRate: 8000, channels: 1 } }, keyframe: [Buffer.alloc(160, 0xd5)], delta: [Buffer.alloc(160, 0x55)] },
  PCMU: { track: { kind: 'audio', codec: { name: 'PCMU', clockRate: 16000, channels: 1 } }, keyframe: [Buffer.alloc(320, 0xff)], delta: [Buffer.alloc(320, 0x7f)] },
};

test('one entry per codec name, listed in ALL_CODECS order with the kind ALL_CODECS gives it', { timeout: 5000 }, () => {
  for (const [name, f] of Object.entries(CODECS)) assert.equal(f.name, name);
  assert.deepEqual(CODEC_LIST.map((f) => f.name), [...ALL_CODECS.video, ...ALL_CODECS.audio]);
  for (const kind of ['video', 'audio'] as const) for (const n of ALL_CODECS[kind]) assert.equal(CODECS[n].kind, kind, n);
  assert.equal(codecFormat('VP8'), undefined);
  assert.equal(codecFormat('constructor'), undefined, 'no prototype key is a codec');
});

test('SDP encoding names resolve in any case; aliases only in URL queries; no name is taken twice', { timeout: 5000 }, () => {
  for (const f of CODEC_LIST) {
    assert.equal(formatByEncoding(f.encoding), f);
    assert.equal(formatByEncoding(f.encoding.toLowerCase()), f);
    for (const n of [f.name, f.encoding, ...f.aliases]) {
      assert.equal(formatByQueryName(n.toLowerCase()), f, n);
      assert.equal(formatByQueryName(n.toUpperCase()), f, n);
    }
  }
  assert.deepEqual(
    CODEC_LIST.map((f) => [f.encoding, f.aliases]),
    [['H264', ['AVC']], ['H265', ['HEVC']], ['opus', []], ['MPEG4-GENERIC', ['AAC']], ['PCMA', []], ['PCMU', []]],
  );
  assert.equal(formatByEncoding('AAC'), undefined, 'AAC is MPEG4-GENERIC in SDP');
  assert.equal(formatByEncoding('HEVC'), undefined);
  assert.equal(formatByQueryName('VP8'), undefined);
  const names = CODEC_LIST.flatMap((f) => [...new Set([f.name, f.encoding.toUpperCase(), ...f.aliases])]);
  assert.equal(new Set(names).size, names.length, `a name stands for two codecs: ${names.join(' ')}`);
  assert.deepEqual(parseMediaQuery('video=avc,hevc&audio=aac,mpeg4-generic,opus'), { video: ['H264', 'H265'], audio: ['AAC', 'OPUS'] });
  assert.deepEqual(parseMediaQuery('video=opus&audio=h264'), { video: [], audio: [] }, 'a codec of the other kind is not taken');
});

test('static payload types: G.711 only, at 8000 Hz mono, everywhere SDP is read or written', { timeout: 5000 }, () => {
  assert.deepEqual(CODEC_LIST.filter((f) => f.staticPayloadType !== undefined).map((f) => [f.name, f.staticPayloadType, f.clockRate]), [['PCMA', 8, 8000], ['PCMU', 0, 8000]]);
  assert.equal(formatByStaticPayloadType(0)?.name, 'PCMU');
  assert.equal(formatByStaticPayloadType(8)?.name, 'PCMA');
  assert.equal(formatByStaticPayloadType(3), undefined, 'GSM is not carried');
  const m = parseSdp('v=0\r\nm=audio 0 RTP/AVP 0\r\n').media[0]!;
  assert.deepEqual(trackFromMedia(m)?.codec, { name: 'PCMU', clockRate: 8000, channels: 1, fmtp: undefined });
  assert.equal(parseSdp('v=0\r\nm=audio 0 RTP/AVP 3\r\n').media[0]!.codec, 'GSM', 'other static types still named');
  assert.deepEqual(describeTracks([SAMPLES.PCMA.track, { kind: 'audio', codec: { name: 'PCMU', clockRate: 8000, channels: 1 } }, SAMPLES.PCMU.track]).media.map((x) => x.payloadType), [8, 0, 96]);
  const offer = 'v=0\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijabcdefghijab\r\na=fingerprint:sha-256 AA:BB\r\nm=audio 9 UDP/TLS/RTP/SAVPF 8 0\r\na=mid:0\r\na=recvonly\r\n';
  assert.deepEqual(parseOffer(offer).audio?.codecs.map((c) => [c.name, c.codec.payloadType, c.codec.clockRate]), [['PCMA', 8, 8000], ['PCMU', 0, 8000]]);
  assert.deepEqual(scanOffer(offer)[0]!.codecs.map((c) => c.rtpmap), ['PCMA/8000', 'PCMU/8000']);
});

test('the offer asks for generic NACK per payload type, or for all with *; nack pli alone is not it', { timeout: 5000 }, () => {
  const video = (fb: string) => `v=0\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:0\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 H264/90000\r\n${fb}`;
  const nack = (sdp: string) => scanOffer(sdp)[0]!.codecs.map((c) => c.nack === true);
  assert.deepEqual(nack(video('a=rtcp-fb:97 nack\r\na=rtcp-fb:96 nack pli\r\n')), [false, true]);
  assert.deepEqual(nack(video('a=rtcp-fb:* nack\r\n')), [true, true]);
  assert.deepEqual(nack(video('')), [false, false]);
});

test('every entry round-trips its fmtp: served SDP read back gives the same track, written again the same SDP', { timeout: 5000 }, () => {
  for (const f of CODEC_LIST) {
    const { track } = SAMPLES[f.name];
    const first = describeTracks([track]).sdp;
    const m = parseSdp(first).media[0]!;
    assert.equal(m.codec, f.encoding.toUpperCase(), f.name);
    assert.equal(unsupportedReason(m), undefined, `${f.name}: ${first}`);
    const back = trackFromMedia(m)!;
    assert.equal(back.kind, track.kind);
    assert.equal(back.codec.name, f.name);
    assert.equal(back.codec.clockRate, track.codec.clockRate);
    assert.equal(back.codec.channels, track.codec.channels);
    assert.equal(back.codec.fmtp, f.fmtp(track), `${f.name}: the track keeps the fmtp it was served with`);
    if (f.parameterSets) assert.deepEqual(back.params, track.params, `${f.name}: parameter sets through sprop`);
    assert.equal(describeTracks([back]).sdp, first, `${f.name}: written again, the same SDP`);
  }
});

test('the receiver takes exactly the table: each encoding in its own kind, nothing else', { timeout: 5000 }, () => {
  const section = (kind: string, name: string) => parseSdp(`v=0\r\nm=${kind} 0 RTP/AVP 96\r\na=rtpmap:96 ${name}/90000\r\n`).media[0]!;
  for (const f of CODEC_LIST) {
    const other = f.kind === 'video' ? 'audio' : 'video';
    assert.equal(unsupportedReason(section(other, f.encoding)), `${f.encoding.toUpperCase()} in a ${other} section`);
    const r = unsupportedReason(section(f.kind, f.encoding));
    // AAC refuses a section without its AU header layout: still its own reason, not "not carried".
    assert.ok(r === undefined || r.startsWith('AAC with'), `${f.name}: ${r}`);
  }
  for (const name of ['VP8', 'AVC', 'HEVC', 'AAC', 'G722', 'MP4V-ES']) assert.match(unsupportedReason(section('video', name)) ?? '', /is not carried/, name);
});

test('describe writes each entry under its encoding name, and serves every codec of the table', { timeout: 5000 }, () => {
  for (const f of CODEC_LIST) {
    const d = mediaForTrack(SAMPLES[f.name].track, 96, 'trackID=0');
    assert.equal(d.codec, f.encoding);
    assert.deepEqual({ clockRate: d.clockRate, channels: d.channels }, { channels: undefined, ...f.rtpmap(SAMPLES[f.name].track) });
  }
  assert.match(describeTracks([SAMPLES.OPUS.track]).sdp, /a=rtpmap:96 opus\/48000\/2\r\n/);
});

test('WebRTC sends what the table marks: H.264 and H.265 video; Opus, PCMA, PCMU audio', { timeout: 5000 }, () => {
  assert.deepEqual(webrtcFormats('video').map((f) => f.name), ['H264', 'H265']);
  assert.deepEqual(webrtcFormats('audio').map((f) => [f.name, f.webrtc!.clockRate]), [['OPUS', 48000], ['PCMA', 8000], ['PCMU', 8000]]);
});

function rtp(pt: number, seq: number, ts: number, marker: boolean, payload: Buffer): Buffer {
  const h = Buffer.alloc(12);
  writeRtpHeader(h, 0, { marker, payloadType: pt, sequenceNumber: seq, timestamp: ts, ssrc: 7 });
  return Buffer.concat([h, payload]);
}

test("each entry's packetizer and depacketizer are a pair, the depacketizer reading the fmtp describe writes", { timeout: 5000 }, () => {
  for (const f of CODEC_LIST) {
    const s = SAMPLES[f.name];
    // The track as a player sees it: from the served SDP, so AAC's AU header layout comes from there.
    const served = trackFromMedia(parseSdp(describeTracks([s.track]).sdp).media[0]!)!;
    const units: MediaUnit[] = [];
    const d = f.depacketizer(served, (u) => units.push(u));
    let seq = 0;
    for (const [i, data] of [s.keyframe, s.delta].entries()) {
      const frame: Frame = { track: s.track, timestamp: i * 3000, keyframe: i === 0, data };
      const payloads = f.packetize(frame);
      assert.equal(f.packetize(frame), payloads, `${f.name}: made once per frame`);
      for (const p of payloads) d.push(parseRtp(rtp(96, seq++, 1000 + i * 3000, p.marker, payloadBytes(p))));
    }
    // Audio units come out as they arrive; an access unit when the next one begins.
    if (f.kind === 'video') d.push(parseRtp(rtp(96, seq++, 99999, true, f.name === 'H264' ? Buffer.from([0x41, 9]) : h265(1, 3))));
    assert.deepEqual(units.slice(0, 2).map((u) => u.data), [s.keyframe, s.delta], f.name);
    assert.deepEqual(units.slice(0, 2).map((u) => u.keyframe), [true, f.kind === 'audio'], f.name);
  }
});

test('parameter sets: in front of a keyframe once, at the receiver; the packetizers leave such frames alone', { timeout: 5000 }, () => {
  const silent = { info() {}, warn() {}, debug() {}, error() {}, child: () => silent } as never;
  for (const name of ['H264', 'H265'] as const) {
    const s = SAMPLES[name];
    const track: Track = { ...s.track, params: { ...s.track.params } };
    const frames: Frame[] = [];
    const r = new RtpReceiver(track, 96, (fr) => frames.push(fr), silent);
    // The keyframe without its sets in band (they came in the SDP), after an AUD.
    const aud = name === 'H264' ? Buffer.from([0x09, 0xf0]) : h265(35, 1);
    const bare = [aud, s.keyframe[s.keyframe.length - 1]!];
    let seq = 0;
    for (const p of CODECS[name].packetize({ track: { ...track, params: {} }, timestamp: 0, keyframe: true, data: bare })) r.push(rtp(96, seq++, 0, p.marker, payloadBytes(p)));
    r.push(rtp(96, seq++, 3000, true, s.delta[0]!));
    assert.ok(frames.length >= 1);
    assert.deepEqual(frames[0]!.data, s.keyframe, `${name}: sets first, AUD gone`);
    const guard = name === 'H264' ? withTrackParameterSets : withTrackH265ParameterSets;
    assert.equal(guard(frames[0]!.data, track, true), frames[0]!.data, `${name}: a receiver frame is not copied again`);
  }
});

test('the receiver, describe, the play URL and the RTSP output name no codec themselves', { timeout: 5000 }, () => {
  const names = CODEC_LIST.flatMap((f) => [f.name, f.encoding, ...f.aliases]);
  for (const file of ['src/rtsp/receiver.ts', 'src/rtsp/describe.ts', 'src/rtsp/play-url.ts', 'src/outputs/rtsp.ts', 'src/outputs/webrtc/ndc-sdp.ts']) {
    const text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    for (const n of names) assert.ok(!text.includes(`'${n}'`), `${file} spells '${n}': read it from the codec table`);
  }
});
