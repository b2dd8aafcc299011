import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { GopCache } from '../../src/core/gop-cache.js';
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
