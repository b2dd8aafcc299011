import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SlicedFanOut } from '../../src/core/sliced-fan-out.js';
import { Stream, FAN_OUT_SLICE_MS, type StreamSettings } from '../../src/core/stream.js';
import { setRootLogger } from '../../src/core/log.js';
import { pino } from 'pino';
import { ScriptedSource, TestViewer } from '../helpers/fake-parts.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

/** Targets that record what they got; each delivery advances the fake clock by `cost` ms. */
function rig(names: string[], cost: number, sliceMs = 4) {
  const targets = new Map(names.map((n) => [n, [] as number[]]));
  let clock = 0;
  const calls: string[] = [];
  const fan = new SlicedFanOut<number, [string, number[]]>(
    () => targets.entries(),
    (item, [name, got]) => {
      calls.push(`${name}:${item}`);
      got.push(item);
      clock += cost;
    },
    sliceMs,
    () => clock,
  );
  return { fan, targets, calls };
}

test('within the budget every target gets the item before push() returns', { timeout: 5000 }, () => {
  const { fan, targets } = rig(['a', 'b', 'c'], 1);
  fan.push(1);
  fan.push(2);
  for (const got of targets.values()) assert.deepEqual(got, [1, 2]);
  assert.equal(fan.size, 0);
});

test('past the budget it yields to the event loop and keeps every target in order', { timeout: 5000 }, async () => {
  const { fan, targets } = rig(['a', 'b', 'c', 'd', 'e'], 3);
  fan.push(1);
  // 3 ms a delivery, 4 ms a turn: two deliveries, then the rest waits for a later turn.
  assert.deepEqual([...targets.values()].map((g) => g.length), [1, 1, 0, 0, 0]);
  fan.push(2);
  fan.push(3);
  assert.equal(fan.size, 3, 'pushed while a slice is pending: queued, not delivered out of turn');
  let turns = 0;
  for (; turns < 100 && fan.size > 0; turns++) await nextTurn();
  for (const got of targets.values()) assert.deepEqual(got, [1, 2, 3]);
  assert.ok(turns >= 7, `13 more deliveries at 2 a turn take at least 7 more turns (took ${turns})`);
});

test('a target added mid-item gets the rest of it; a removed one gets nothing more', { timeout: 5000 }, async () => {
  const { fan, targets, calls } = rig(['a', 'b', 'c'], 3);
  fan.push(1);
  assert.deepEqual(calls, ['a:1', 'b:1']);
  targets.delete('c');
  targets.set('d', []);
  await waitFor('the fan-out to finish', () => fan.size === 0, 2000);
  assert.deepEqual(calls, ['a:1', 'b:1', 'd:1']);
});

test('clear() inside a delivery drops the rest and the queue', { timeout: 5000 }, async () => {
  const got: string[] = [];
  const fan: SlicedFanOut<number, string> = new SlicedFanOut(
    () => ['a', 'b', 'c'][Symbol.iterator](),
    (item, t) => {
      got.push(`${t}:${item}`);
      // A consumer reacting synchronously queues item 2 behind item 1; the stream then closes.
      if (item === 1 && t === 'a') fan.push(2);
      if (t === 'b') fan.clear();
    },
    4,
  );
  fan.push(1);
  assert.deepEqual(got, ['a:1', 'b:1']);
  assert.equal(fan.size, 0);
  fan.push(3);
  assert.deepEqual(got, ['a:1', 'b:1', 'a:3', 'b:3']);
});

const settings: StreamSettings = { idleTimeout: 0, startTimeout: 2000, backoff: { base: 40, max: 320, stableAfter: 10_000 } };

/** A viewer whose every frame takes longer than a whole slice: the fan-out yields after it. */
class SlowViewer extends TestViewer {
  override onFrame(f: Parameters<TestViewer['onFrame']>[0]): void {
    const until = performance.now() + FAN_OUT_SLICE_MS + 1;
    while (performance.now() < until);
    super.onFrame(f);
  }
}

async function twoViewers() {
  let src: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], settings, (url) => (src = new ScriptedSource(url, { outcome: 'ok', after: 1 })));
  const slow = new SlowViewer('slow');
  const late = new TestViewer('late');
  await stream.attach(slow);
  await stream.attach(late);
  return { stream, slow, late, src: () => src! };
}

test('a viewer catching up while a frame is on its way does not get that frame twice', { timeout: 5000 }, async () => {
  const { stream, late, src } = await twoViewers();
  src().emitFrame({ timestamp: 3600, keyframe: true, data: [Buffer.alloc(10)] });
  assert.equal(late.frames.length, 0, 'the slow viewer used up the slice');
  const gop = stream.catchUp(late);
  assert.deepEqual(gop.map((f) => f.timestamp), [3600]);
  for (let i = 0; i < 5; i++) await nextTurn();
  assert.equal(late.frames.length, 0, 'the keyframe it caught up with is not fanned out to it again');
  src().emitFrame({ timestamp: 7200, keyframe: false, data: [Buffer.alloc(10)] });
  await waitFor('the next frame', () => late.frames.length >= 1, 2000);
  for (let i = 0; i < 5; i++) await nextTurn();
  assert.deepEqual(late.frames.map((f) => f.timestamp), [7200], 'after the GOP only the next live frame, nothing twice');
  stream.close();
  await stream.done;
});

test('frames of a source that ended while they waited are not delivered', { timeout: 5000 }, async () => {
  const { stream, slow, late, src } = await twoViewers();
  src().emitFrame({ timestamp: 3600, keyframe: true, data: [Buffer.alloc(10)] });
  assert.equal(slow.frames.length, 1);
  src().fail();
  for (let i = 0; i < 5; i++) await nextTurn();
  assert.equal(late.frames.length, 0, 'the old camera session\'s keyframe would precede the new one\'s deltas');
  stream.close();
  await stream.done;
});
