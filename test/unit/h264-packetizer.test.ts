import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_PAYLOAD, packetizeH264, packetizeH264Frame, withTrackParameterSets } from '../../src/rtp/h264-packetizer.js';
import type { Frame, Track } from '../../src/core/media.js';
import { payloadBytes } from '../../src/rtp/payload.js';

function nal(type: number, size: number, nri = 3): Buffer {
  const b = Buffer.alloc(size);
  b[0] = (nri << 5) | type;
  for (let i = 1; i < size; i++) b[i] = i & 0xff;
  return b;
}

/** Reassembles FU-A fragments (RFC 6184 5.8) back into NAL units, checking the S/E bits. */
function depacketize(payloads: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let fu: Buffer[] | undefined;
  for (const p of payloads) {
    const type = p[0]! & 0x1f;
    if (type !== 28) {
      assert.equal(fu, undefined, 'single NAL inside an FU-A run');
      out.push(p);
      continue;
    }
    const start = (p[1]! & 0x80) !== 0;
    const end = (p[1]! & 0x40) !== 0;
    if (start) {
      assert.equal(fu, undefined, 'FU-A start twice');
      fu = [Buffer.from([(p[0]! & 0xe0) | (p[1]! & 0x1f)])];
    }
    assert.ok(fu, 'FU-A fragment without start');
    fu.push(p.subarray(2));
    if (end) {
      out.push(Buffer.concat(fu));
      fu = undefined;
    }
  }
  assert.equal(fu, undefined, 'unterminated FU-A');
  return out;
}

test('small NAL units go as single-NAL packets, marker on the last only', { timeout: 5000 }, () => {
  const nals = [nal(7, 20), nal(8, 5), nal(5, 1000)];
  const p = packetizeH264(nals);
  assert.equal(p.length, 3);
  assert.deepEqual(p.map((x) => x.marker), [false, false, true]);
  assert.deepEqual(p.map((x) => payloadBytes(x)), nals);
});

test('a NAL unit larger than the budget is split into FU-A and reassembles exactly', { timeout: 5000 }, () => {
  const big = nal(5, 5000, 2);
  const nals = [nal(7, 20), nal(8, 5), big, nal(1, 3000)];
  const p = packetizeH264(nals);
  for (const x of p) assert.ok(payloadBytes(x).length <= DEFAULT_MAX_PAYLOAD, `payload ${payloadBytes(x).length} over budget`);
  assert.deepEqual(p.map((x) => x.marker).filter(Boolean).length, 1);
  assert.equal(p[p.length - 1]!.marker, true);
  const first = payloadBytes(p[2]!);
  assert.equal(first[0]! & 0x1f, 28);
  assert.equal(first[0]! & 0x60, 2 << 5, 'FU indicator keeps the NRI');
  assert.equal(first[1]!, 0x80 | 5, 'start bit and the original type');
  assert.deepEqual(depacketize(p.map((x) => payloadBytes(x))), nals);
});

test('boundaries: a NAL of exactly the budget stays whole, one byte more is two fragments', { timeout: 5000 }, () => {
  assert.equal(packetizeH264([nal(5, 100)], 100).length, 1);
  const two = packetizeH264([nal(5, 101)], 100);
  assert.equal(two.length, 2);
  assert.deepEqual(depacketize(two.map((x) => payloadBytes(x))), [nal(5, 101)]);
  // 1 + 3*98 bytes: the body fills three fragments exactly, the last with the end bit.
  const three = packetizeH264([nal(5, 1 + 3 * 98)], 100);
  assert.equal(three.length, 3);
  assert.equal(payloadBytes(three[2]!)[1]! & 0x40, 0x40);
});

test('AUD and filler are dropped, empty units skipped, empty input gives nothing', { timeout: 5000 }, () => {
  const p = packetizeH264([nal(9, 2), Buffer.alloc(0), nal(12, 10), nal(1, 50)]);
  assert.equal(p.length, 1);
  assert.equal(payloadBytes(p[0]!)[0]! & 0x1f, 1);
  assert.equal(p[0]!.marker, true);
  assert.deepEqual(packetizeH264([]), []);
});

test('keyframes get the track SPS/PPS in front when not in band; frames share payloads', { timeout: 5000 }, () => {
  const sps = nal(7, 10);
  const pps = nal(8, 4);
  const track: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 }, params: { sps, pps } };
  const idr = nal(5, 300);
  assert.deepEqual(withTrackParameterSets([idr], track, true), [sps, pps, idr]);
  const inband = [nal(7, 12), nal(8, 6), idr];
  assert.equal(withTrackParameterSets(inband, track, true), inband);
  assert.deepEqual(withTrackParameterSets([idr], track, false), [idr]);

  const frame: Frame = { track, timestamp: 0, keyframe: true, data: [idr] };
  const a = packetizeH264Frame(frame);
  assert.equal(a.length, 3);
  assert.equal(packetizeH264Frame(frame), a, 'second viewer gets the same payload list');
});

test('a track keeps the payloads of its latest frames only: an older frame is packetized again, to the same bytes', () => {
  const track: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 } } as Track;
  const other: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 } } as Track;
  const frames: Frame[] = [0, 1, 2].map((i) => ({ track, timestamp: i * 3600, keyframe: false, data: [nal(1, 3000 + i)] }));
  const first = packetizeH264Frame(frames[0]!);
  assert.equal(packetizeH264Frame(frames[0]!), first, 'the viewers of one frame share its payloads');
  // Another stream's frames in between do not push this track's out.
  for (let i = 0; i < 5; i++) packetizeH264Frame({ track: other, timestamp: i, keyframe: false, data: [nal(1, 100)] });
  assert.equal(packetizeH264Frame(frames[0]!), first);
  packetizeH264Frame(frames[1]!);
  assert.equal(packetizeH264Frame(frames[0]!), first, 'two frames of a track are kept');
  packetizeH264Frame(frames[2]!);
  const again = packetizeH264Frame(frames[0]!);
  assert.notEqual(again, first, 'a third frame let the first one go');
  assert.deepEqual(
    again.map((p) => [p.marker, payloadBytes(p).toString('hex')]),
    first.map((p) => [p.marker, payloadBytes(p).toString('hex')]),
  );
});

test('FU-A fragments are views of their NAL unit, not copies, and share their headers', { timeout: 5000 }, () => {
  const big = nal(5, 5000, 2);
  const p = packetizeH264([big], 1000);
  assert.equal(p.length, 6);
  for (const [i, x] of p.entries()) {
    assert.equal(x.body.buffer, big.buffer, `fragment ${i} is a view of the NAL`);
    assert.equal(x.body.byteOffset, big.byteOffset + 1 + i * 998);
  }
  assert.equal(p[1]!.head, p[4]!.head, 'the middle fragments share one header');
  assert.deepEqual(p.map((x) => x.head[1]! & 0xc0), [0x80, 0, 0, 0, 0, 0x40]);
  assert.deepEqual(depacketize(p.map((x) => payloadBytes(x))), [big]);
});
