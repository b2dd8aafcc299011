import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { GopCache } from '../../src/core/gop-cache.js';
import { GopArena } from '../../src/core/gop-arena.js';
import { Stream, type StreamSettings } from '../../src/core/stream.js';
import { setRootLogger } from '../../src/core/log.js';
import type { Frame } from '../../src/core/media.js';
import { H264, OPUS, ScriptedSource, TestViewer } from '../helpers/fake-parts.js';

setRootLogger(pino({ level: 'silent' }));

const frame = (n: number, keyframe: boolean, bytes = 100): Frame => ({ track: H264, timestamp: n * 3600, keyframe, data: [Buffer.alloc(bytes, n)] });

test('the cache holds the latest keyframe and every frame after it', { timeout: 5000 }, () => {
  const gop = new GopCache({ maxBytes: 10_000, maxDuration: 60_000 });
  gop.push(frame(0, false));
  assert.equal(gop.frames.length, 0, 'nothing decodable before the first keyframe');
  for (let i = 1; i <= 5; i++) gop.push(frame(i, i === 1));
  assert.deepEqual(gop.frames.map((f) => f.timestamp / 3600), [1, 2, 3, 4, 5]);
  gop.push(frame(6, true));
  gop.push(frame(7, false));
  assert.deepEqual(gop.frames.map((f) => f.timestamp / 3600), [6, 7], 'a new keyframe starts a new GOP');
  assert.equal(gop.bytes, 200);
});

test('a GOP over max_bytes empties the cache until the next keyframe, keeping that keyframe for snapshots', { timeout: 5000 }, () => {
  const gop = new GopCache({ maxBytes: 450, maxDuration: 60_000 });
  gop.push(frame(1, true));
  for (let i = 2; i <= 4; i++) gop.push(frame(i, false));
  assert.equal(gop.frames.length, 4);
  gop.push(frame(5, false));
  assert.equal(gop.frames.length, 0, '500 bytes > 450: a partial GOP is not kept');
  gop.push(frame(6, false));
  assert.equal(gop.frames.length, 0, 'deltas after an overflow are not decodable alone');
  assert.equal(gop.keyframe?.timestamp, 3600);
  gop.push(frame(7, true));
  assert.equal(gop.frames.length, 1);
});

test('max_bytes 0 disables the cache; max_duration bounds its age', { timeout: 5000 }, () => {
  const off = new GopCache({ maxBytes: 0, maxDuration: 60_000 });
  off.push(frame(1, true));
  off.push(frame(2, false));
  assert.equal(off.frames.length, 0);
  assert.equal(off.keyframe?.timestamp, 3600);
  let now = 0;
  const aged = new GopCache({ maxBytes: 1e9, maxDuration: 2000 }, () => now);
  aged.push(frame(1, true));
  now = 2000;
  aged.push(frame(2, false));
  assert.equal(aged.frames.length, 2, 'exactly max_duration old is kept');
  now = 2001;
  aged.push(frame(3, false));
  assert.equal(aged.frames.length, 0);
});

const settings: StreamSettings = { idleTimeout: 0, startTimeout: 2000, backoff: { base: 40, max: 320, stableAfter: 10_000 } };

test('a viewer joining a live stream catches up from the current GOP, then gets every live frame', { timeout: 5000 }, async () => {
  let src: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], settings, (url) => (src = new ScriptedSource(url, { outcome: 'ok', after: 1 })));
  const first = new TestViewer('first');
  await stream.attach(first);
  for (let i = 1; i <= 4; i++) src!.emitFrame({ timestamp: i * 3600, keyframe: i === 1, data: [Buffer.alloc(10)] });
  src!.emitFrame({ timestamp: 0, keyframe: false, data: [Buffer.alloc(4)] }, OPUS);

  const late = new TestViewer('late');
  await stream.attach(late);
  src!.emitFrame({ timestamp: 5 * 3600, keyframe: false, data: [Buffer.alloc(10)] });
  assert.equal(late.frames.filter((f) => f.track.kind === 'video').length, 0, 'without catching up, a late viewer waits for a keyframe');

  const gop = stream.catchUp(late);
  assert.deepEqual(gop.map((f) => f.timestamp / 3600), [1, 2, 3, 4, 5], 'keyframe first, audio not replayed');
  src!.emitFrame({ timestamp: 6 * 3600, keyframe: false, data: [Buffer.alloc(10)] });
  assert.deepEqual(late.frames.filter((f) => f.track.kind === 'video').map((f) => f.timestamp / 3600), [6], 'live deltas continue the GOP');

  const audioOnly = new TestViewer('audio', { audio: ['OPUS'] });
  await stream.attach(audioOnly);
  assert.deepEqual(stream.catchUp(audioOnly), [], 'nothing for a viewer without video');
  stream.close();
  await stream.done;
});

test('what the cache hands out stays whole after the next GOP overwrites its own copies', { timeout: 5000 }, async () => {
  let src: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], settings, (url) => (src = new ScriptedSource(url, { outcome: 'ok', after: 1 })));
  const first = new TestViewer('first');
  await stream.attach(first);
  const sent = [1, 2, 3].map((i) => ({ timestamp: i * 3600, keyframe: i === 1, data: [Buffer.alloc(1000, i), Buffer.alloc(10, i + 100)] }));
  for (const f of sent) src!.emitFrame(f);
  const late = new TestViewer('late');
  await stream.attach(late);
  const held = stream.catchUp(late);
  const keyframe = stream.lastKeyframe;
  assert.equal(stream.lastKeyframe, keyframe, 'the same keyframe object while it is the latest (a JPEG of it is reused)');
  // The next GOP, larger than the last one, written over the cache's arena.
  for (let i = 4; i <= 8; i++) src!.emitFrame({ timestamp: i * 3600, keyframe: i === 4, data: [Buffer.alloc(1000, 0xee), Buffer.alloc(10, 0xee)] });
  assert.deepEqual(held.map((f) => f.data.map((d) => [d.length, d[0], d.at(-1)])), sent.map((f) => f.data.map((d) => [d.length, d[0], d.at(-1)])), 'the caught-up frames as the camera sent them');
  assert.deepEqual([keyframe?.timestamp, keyframe?.data[0]?.[0], keyframe?.data[1]?.[9]], [3600, 1, 101], 'the old keyframe as it was');
  assert.equal(stream.lastKeyframe?.timestamp, 4 * 3600);
  assert.equal(stream.lastKeyframe?.data[0]?.[0], 0xee);
  stream.close();
  await stream.done;
});

test('the cache keeps copies: a source reusing its buffers does not change what it holds', { timeout: 5000 }, () => {
  const gop = new GopCache({ maxBytes: 1e6, maxDuration: 60_000 });
  const buf = Buffer.alloc(50, 7);
  gop.push({ track: H264, timestamp: 0, keyframe: true, data: [buf] });
  buf.fill(9);
  assert.equal(gop.frames[0]?.data[0]?.[0], 7);
  assert.equal(gop.keyframe?.data[0]?.[0], 7);
});

test("the arena's memory is reused from GOP to GOP and given back after a large one", { timeout: 5000 }, () => {
  const arena = new GopArena();
  const gopOf = (frames: number, bytes: number) => {
    arena.reset();
    for (let i = 0; i < frames; i++) arena.copy(Buffer.alloc(bytes, i));
  };
  gopOf(50, 20_000);
  const steady = arena.capacity;
  assert.ok(steady >= 50 * 20_000 && steady <= 50 * 20_000 + 2 * 128 * 1024, `one GOP of 1 MB held in ${steady} bytes`);
  for (let g = 0; g < 20; g++) gopOf(g % 2 ? 50 : 40, 20_000);
  assert.equal(arena.capacity, steady, 'GOPs of that size or a little shorter allocate nothing more and free nothing');
  gopOf(50, 200_000);
  assert.ok(arena.capacity >= 10_000_000);
  gopOf(50, 20_000);
  gopOf(50, 20_000);
  assert.ok(arena.capacity <= steady, `after the large GOP ${arena.capacity} bytes, no more than the small one needs`);
  const big = Buffer.alloc(600_000, 3);
  arena.reset();
  const copy = arena.copy(big);
  assert.ok(copy.equals(big), 'a frame larger than a chunk is copied whole');
});
