import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { AacDepacketizer } from '../../src/rtp/aac-depacketizer.js';
import type { AudioUnit } from '../../src/rtp/audio-depacketizer.js';
import { DepacketizeError } from '../../src/rtp/errors.js';
import type { RtpPacket } from '../../src/rtp/packet.js';
import { aacRtpConfig, parseAudioSpecificConfig, type AacRtpConfig } from '../../src/codecs/aac.js';
import { RtpReceiver, trackFromMedia, unsupportedReason } from '../../src/rtsp/receiver.js';
import { parseSdp } from '../../src/rtsp/sdp.js';
import type { Frame } from '../../src/core/media.js';

const HBR: AacRtpConfig = { sizeLength: 13, indexLength: 3, indexDeltaLength: 3, auDuration: 1024 };

function pkt(payload: Buffer, seq: number, ts: number, marker = true): RtpPacket {
  return { marker, payloadType: 97, sequenceNumber: seq, timestamp: ts, ssrc: 1, csrc: [], payload };
}

/** An AAC-hbr payload: AU-headers-length, one 16-bit header per AU (13-bit size, 3-bit index), data. */
function hbr(aus: Buffer[], sizes = aus.map((a) => a.length)): Buffer {
  const head = Buffer.alloc(2 + 2 * sizes.length);
  head.writeUInt16BE(16 * sizes.length, 0);
  sizes.forEach((s, i) => head.writeUInt16BE(s << 3, 2 + 2 * i));
  return Buffer.concat([head, ...aus]);
}

const au = (n: number, fill: number) => Buffer.alloc(n, fill);

function collect(cfg = HBR): { d: AacDepacketizer; units: AudioUnit[] } {
  const units: AudioUnit[] = [];
  return { d: new AacDepacketizer(cfg, (u) => units.push(u)), units };
}

function errorOf(fn: () => void): DepacketizeError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof DepacketizeError) return e;
    throw e;
  }
  return undefined;
}

test('AudioSpecificConfig: object type, sample rate, channels, frame length', () => {
  assert.deepEqual(parseAudioSpecificConfig('1190'), { objectType: 2, sampleRate: 48000, channels: 2, frameLength: 1024 });
  assert.deepEqual(parseAudioSpecificConfig('1408'), { objectType: 2, sampleRate: 16000, channels: 1, frameLength: 1024 });
  assert.deepEqual(parseAudioSpecificConfig('1194'), { objectType: 2, sampleRate: 48000, channels: 2, frameLength: 960 });
  // Explicit frequency (index 15): 0x0bb80 = 48000.
  assert.equal(parseAudioSpecificConfig('17805dc010')?.sampleRate, 48000);
  for (const bad of ['', 'zz', '1', '00', 'f']) assert.equal(parseAudioSpecificConfig(bad), undefined, bad);
});

test('fmtp: AAC-hbr and lbr layouts are read; other modes and fields are refused with a reason', () => {
  const fmtp = { mode: 'AAC-hbr', sizelength: '13', indexlength: '3', indexdeltalength: '3', config: '1190' };
  assert.deepEqual(aacRtpConfig(fmtp, 48000), HBR);
  assert.equal((aacRtpConfig({ ...fmtp, config: '2B118800' }, 48000) as AacRtpConfig).auDuration, 2048, 'HE-AAC: 1024 core samples at half the RTP clock');
  assert.equal((aacRtpConfig({ ...fmtp, constantduration: '960' }, 48000) as AacRtpConfig).auDuration, 960);
  assert.deepEqual(aacRtpConfig({ mode: 'CELP-cbr' }, 8000), { unsupported: 'mode=CELP-cbr' });
  assert.deepEqual(aacRtpConfig({ ...fmtp, ctsdeltalength: '2' }, 48000), { unsupported: 'ctsdeltalength=2' });
  assert.deepEqual(aacRtpConfig({ ...fmtp, sizelength: '40' }, 48000), { unsupported: 'sizelength=40' });
});

test('one packet with one AU, and one with three AUs timed 1024 apart', () => {
  const { d, units } = collect();
  d.push(pkt(hbr([au(200, 1)]), 1, 5000));
  d.push(pkt(hbr([au(10, 2), au(20, 3), au(30, 4)]), 2, 6024));
  assert.deepEqual(units.map((u) => [u.timestamp, u.data.length, u.data[0]]), [[5000, 200, 1], [6024, 10, 2], [7048, 20, 3], [8072, 30, 4]]);
});

test('an AU fragmented over three packets comes out whole; a lost fragment drops it with a named error', () => {
  const { d, units } = collect();
  const big = Buffer.concat([au(1000, 7), au(1000, 8), au(500, 9)]);
  const frags = [big.subarray(0, 1000), big.subarray(1000, 2000), big.subarray(2000)];
  frags.forEach((f, i) => d.push(pkt(hbr([f], [big.length]), 10 + i, 1024, i === 2)));
  assert.equal(units.length, 1);
  assert.deepEqual(units[0]!.data, big);

  d.push(pkt(hbr([frags[0]!], [big.length]), 20, 2048, false));
  assert.equal(errorOf(() => d.push(pkt(hbr([frags[2]!], [big.length]), 22, 2048, true)))?.code, 'AuFragmentBroken');
  assert.equal(units.length, 1);
  // The same with the gap before a middle fragment: what is left of that AU goes quietly.
  d.push(pkt(hbr([frags[0]!], [big.length]), 30, 2048 + 512, false));
  assert.equal(errorOf(() => d.push(pkt(hbr([frags[1]!], [big.length]), 32, 2048 + 512, false)))?.code, 'AuFragmentBroken');
  assert.equal(errorOf(() => d.push(pkt(hbr([frags[2]!], [big.length]), 33, 2048 + 512, true))), undefined);
  assert.equal(units.length, 1);
  // Next AU is fine again.
  d.push(pkt(hbr([au(50, 1)]), 34, 3072));
  assert.equal(units.length, 2);
  // A fragment whose marker comes too early.
  assert.equal(errorOf(() => d.push(pkt(hbr([frags[0]!], [big.length]), 35, 4096, true)))?.code, 'AuDataTruncated');
});

test('bad AU headers and sizes are named errors; AUs before the bad one are still delivered', () => {
  const { d, units } = collect();
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([0]), 1, 0)))?.code, 'AuHeadersTruncated');
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([0x00, 0x40, 0x00]), 2, 0)))?.code, 'AuHeadersTruncated', '64 bits of headers in 1 byte');
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([0x00, 0x00]), 3, 0)))?.code, 'AuHeadersTruncated', 'no header');
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([0x00, 0x0a, 0, 0]), 4, 0)))?.code, 'AuHeadersTruncated', '10 bits: a header cut short');
  const e = errorOf(() => d.push(pkt(hbr([au(10, 1), au(5, 2)], [10, 50]), 5, 0)));
  assert.equal(e?.code, 'AuDataTruncated');
  assert.deepEqual(units.map((u) => u.data.length), [10]);
});

test('an AAC SDP section (as gst-rtsp-server writes it) becomes a track whose receiver makes frames', () => {
  const text = [
    'v=0', 's=x', 'm=audio 0 RTP/AVP 97', 'a=rtpmap:97 MPEG4-GENERIC/48000/2',
    'a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1190;sizelength=13;indexlength=3;indexdeltalength=3',
    'm=audio 0 RTP/AVP 98', 'a=rtpmap:98 MPEG4-GENERIC/8000', 'a=fmtp:98 mode=CELP-vbr', '',
  ].join('\r\n');
  const [m0, m1] = parseSdp(text).media;
  const track = trackFromMedia(m0!)!;
  assert.deepEqual(track.codec, { name: 'AAC', clockRate: 48000, channels: 2, fmtp: m0!.fmtp });
  assert.equal(trackFromMedia(m1!), undefined);
  assert.equal(unsupportedReason(m1!), 'AAC with mode=CELP-vbr');

  const frames: Frame[] = [];
  const r = new RtpReceiver(track, 97, (f) => frames.push(f), pino({ level: 'silent' }));
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = 0x80 | 97;
  h.writeUInt32BE(480, 4);
  r.push(Buffer.concat([h, hbr([au(100, 5), au(90, 6)])]));
  r.push(Buffer.concat([h, Buffer.from([0xff])])); // junk: logged and dropped
  assert.deepEqual(frames.map((f) => [f.timestamp, f.keyframe, f.data[0]!.length]), [[480, true, 100], [1504, true, 90]]);
});
