// The RTP pieces the RTSP output adds: H.265 and AAC packetizers, the header writer, the timeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packetizeH265, packetizeH265Frame } from '../../src/rtp/h265-packetizer.js';
import { MAX_AAC_AU, packetizeAac } from '../../src/rtp/aac-packetizer.js';
import { aacLcConfig } from '../../src/codecs/aac.js';
import { parseRtp, writeRtpHeader } from '../../src/rtp/packet.js';
import { RtpTimeline } from '../../src/rtp/timeline.js';
import type { Frame, Track } from '../../src/core/media.js';
import { payloadBytes } from '../../src/rtp/payload.js';

function h265Nal(type: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = type << 1;
  b[1] = 1; // TID 1
  for (let i = 2; i < size; i++) b[i] = i & 0xff;
  return b;
}

/** RFC 7798 4.4.3 reassembly, checking S/E bits and the PayloadHdr. */
function depacketizeH265(payloads: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let fu: Buffer[] | undefined;
  for (const p of payloads) {
    const type = (p[0]! >> 1) & 0x3f;
    if (type !== 49) {
      assert.equal(fu, undefined);
      out.push(p);
      continue;
    }
    assert.equal(p[1], 1, 'TID kept in the PayloadHdr');
    const start = (p[2]! & 0x80) !== 0;
    const end = (p[2]! & 0x40) !== 0;
    if (start) fu = [Buffer.from([(p[0]! & 0x81) | ((p[2]! & 0x3f) << 1), p[1]!])];
    assert.ok(fu, 'fragment without start');
    fu.push(p.subarray(3));
    if (end) {
      out.push(Buffer.concat(fu));
      fu = undefined;
    }
  }
  assert.equal(fu, undefined);
  return out;
}

test('H.265: small NALs alone, large ones in FUs, AUD dropped, marker on the last', () => {
  const nals = [h265Nal(35, 3), h265Nal(32, 20), h265Nal(19, 5000), h265Nal(1, 1200)];
  const payloads = packetizeH265(nals, 1200);
  assert.ok(payloads.every((p) => payloadBytes(p).length <= 1200));
  assert.deepEqual(payloads.map((p) => p.marker), payloads.map((_, i) => i === payloads.length - 1));
  assert.deepEqual(depacketizeH265(payloads.map((p) => payloadBytes(p))), nals.slice(1));
});

test('H.265 frames: VPS/SPS/PPS from the track before a keyframe, shared between viewers', () => {
  const params = { vps: h265Nal(32, 10), sps: h265Nal(33, 12), pps: h265Nal(34, 6) };
  const track: Track = { kind: 'video', codec: { name: 'H265', clockRate: 90000 }, params };
  const key: Frame = { track, timestamp: 0, keyframe: true, data: [h265Nal(19, 100)] };
  const p = packetizeH265Frame(key);
  assert.equal(p, packetizeH265Frame(key), 'cached per frame');
  assert.deepEqual(p.map((x) => (payloadBytes(x)[0]! >> 1) & 0x3f), [32, 33, 34, 19]);
  const delta: Frame = { track, timestamp: 3600, keyframe: false, data: [h265Nal(1, 100)] };
  assert.deepEqual(packetizeH265Frame(delta).map((x) => (payloadBytes(x)[0]! >> 1) & 0x3f), [1]);
});

test('AAC-hbr: one AU header, fragments carry the whole size, oversize dropped', () => {
  const au = Buffer.alloc(300, 7);
  const [one, ...rest] = packetizeAac(au);
  assert.equal(rest.length, 0);
  assert.equal(one!.marker, true);
  assert.equal(payloadBytes(one!).readUInt16BE(0), 16, 'AU-headers-length in bits');
  assert.equal(payloadBytes(one!).readUInt16BE(2) >> 3, 300, 'AU-size');
  assert.equal(payloadBytes(one!).readUInt16BE(2) & 7, 0, 'AU-index');
  assert.deepEqual(payloadBytes(one!).subarray(4), au);

  const big = Buffer.alloc(3000, 1);
  const frags = packetizeAac(big, 1200);
  assert.equal(frags.length, 3);
  assert.deepEqual(frags.map((f) => f.marker), [false, false, true]);
  assert.ok(frags.every((f) => payloadBytes(f).readUInt16BE(2) >> 3 === 3000));
  assert.deepEqual(Buffer.concat(frags.map((f) => payloadBytes(f).subarray(4))), big);
  assert.deepEqual(packetizeAac(Buffer.alloc(MAX_AAC_AU + 1)), []);
  assert.equal(aacLcConfig(44100, 2), '1210');
  assert.equal(aacLcConfig(12345, 2), undefined);
});

test('writeRtpHeader writes what parseRtp reads', () => {
  const b = Buffer.alloc(14);
  writeRtpHeader(b, 0, { marker: true, payloadType: 97, sequenceNumber: 65535, timestamp: 2 ** 32 - 1, ssrc: 0xdeadbeef });
  const p = parseRtp(b);
  assert.deepEqual([p.marker, p.payloadType, p.sequenceNumber, p.timestamp, p.ssrc, p.payload.length], [true, 97, 65535, 2 ** 32 - 1, 0xdeadbeef, 2]);
});

test('timeline: continuous sequence, and a new source continues 20 ms after the last timestamp', () => {
  const tl = new RtpTimeline(90000);
  const a: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 } };
  const b: Track = { ...a };
  const seq0 = tl.sequence;
  const t0 = tl.timestamp({ track: a, timestamp: 1000, keyframe: true, data: [] });
  assert.equal(tl.nextSequence(), seq0);
  const t1 = tl.timestamp({ track: a, timestamp: 4600, keyframe: false, data: [] });
  assert.equal((t1 - t0) >>> 0, 3600);
  // A reconnect: the new source's clock starts anywhere.
  const t2 = tl.timestamp({ track: b, timestamp: 77, keyframe: true, data: [] });
  assert.equal((t2 - t1) >>> 0, 1800);
  const t3 = tl.timestamp({ track: b, timestamp: 3677, keyframe: false, data: [] });
  assert.equal((t3 - t2) >>> 0, 3600);
  assert.equal(tl.nextSequence(), (seq0 + 1) & 0xffff);
  assert.ok([t0, t1, t2, t3].every((t) => Number.isInteger(t) && t >= 0 && t < 2 ** 32));
});
