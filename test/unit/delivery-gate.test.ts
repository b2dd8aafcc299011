// Delivery gating (core/delivery-gate.ts): video from a keyframe on, the catch-up from the GOP,
// and no frame twice for a consumer that caught up while the same frames were still fanned out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsumerGate, KeyframeGate } from '../../src/core/delivery-gate.js';
import type { Frame } from '../../src/core/media.js';
import { H264, OPUS } from '../helpers/fake-parts.js';

const video = (timestamp: number, keyframe = false): Frame => ({ track: H264, timestamp, keyframe, data: [Buffer.from([keyframe ? 0x65 : 0x41])] });
const audio = (timestamp: number): Frame => ({ track: OPUS, timestamp, keyframe: true, data: [Buffer.from([1])] });

test('KeyframeGate: video from the first keyframe on, audio always, again after a reset', { timeout: 5000 }, () => {
  const g = new KeyframeGate();
  assert.deepEqual([video(0), audio(1), video(3000, true), video(6000)].map((f) => g.admit(f)), [false, true, true, true]);
  assert.equal(g.open, true);
  g.reset();
  assert.deepEqual([video(9000), video(12000, true)].map((f) => g.admit(f)), [false, true]);
});

test('ConsumerGate: the catch-up hands over the GOP, and its frames still queued are not sent again', { timeout: 5000 }, () => {
  const gate = new ConsumerGate();
  const gop = [video(0, true), video(3000), video(6000)];
  assert.deepEqual(gate.catchUp(gop, ['H265'], { runId: 1, seq: 3 }), [], 'a codec the consumer does not take: nothing');
  assert.equal(gate.video.open, false);
  assert.deepEqual(gate.catchUp(gop, ['H264'], { runId: 1, seq: 3 }), gop);
  assert.equal(gate.video.open, true, 'it starts on the GOP, without waiting for the next keyframe');
  assert.equal(gate.admit(video(6000), { runId: 1, seq: 3 }), false, 'the third frame of the run came with the catch-up');
  assert.equal(gate.admit(video(9000), { runId: 1, seq: 4 }), true);
  assert.equal(gate.admit(video(0), { runId: 2, seq: 1 }), true, 'another run: its counts are its own');
  assert.deepEqual(gate.catchUp([], ['H264'], { runId: 2, seq: 1 }), [], 'an empty GOP: start at the next keyframe');
});

test('ConsumerGate: after a restart (a reconnect) video waits for the new source\'s keyframe', { timeout: 5000 }, () => {
  const gate = new ConsumerGate();
  assert.equal(gate.admit(video(0, true), { runId: 1, seq: 1 }), true);
  gate.restart();
  assert.equal(gate.admit(video(0), { runId: 2, seq: 1 }), false);
  assert.equal(gate.admit(audio(0), { runId: 2, seq: 1 }), true);
  assert.equal(gate.admit(video(3000, true), { runId: 2, seq: 2 }), true);
});
