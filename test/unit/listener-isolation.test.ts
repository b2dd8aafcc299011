// A listener that throws is logged and counted; it never closes the emitter, never stops the
// other listeners and never reaches whoever emitted (core/typed-emitter.ts, core/owned.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Owned } from '../../src/core/owned.js';
import { Stream } from '../../src/core/stream.js';
import { uncaughtCounts } from '../../src/core/uncaught.js';
import { setRootLogger } from '../../src/core/log.js';
import { ScriptedSource, TestViewer } from '../helpers/fake-parts.js';

setRootLogger(pino({ level: 'silent' }));

class Thing extends Owned<{ ping: [n: number] }> {
  constructor() {
    super('ListenerTestThing');
  }
  ping(n: number): boolean {
    return this.emit('ping', n);
  }
  protected onClose(): void {}
}

test('a throwing listener is counted; the others run and the emitter carries on', { timeout: 5000 }, () => {
  const t = new Thing();
  const got: number[] = [];
  t.on('ping', () => {
    throw new Error('listener bug');
  });
  t.on('ping', (n) => got.push(n));
  const before = uncaughtCounts().listener;
  assert.doesNotThrow(() => t.ping(1));
  assert.doesNotThrow(() => t.ping(2));
  assert.deepEqual(got, [1, 2], 'the listener after the throwing one got every event');
  assert.equal(uncaughtCounts().listener, before + 2);
  assert.equal(t.closed, false);
  t.close();
});

test("a throwing 'close' listener does not escape close(), and the rest of close() still happens", { timeout: 5000 }, async () => {
  const t = new Thing();
  let second = false;
  t.once('close', () => {
    throw new Error('close listener bug');
  });
  t.once('close', () => (second = true));
  assert.doesNotThrow(() => t.close(new Error('why')));
  assert.equal(second, true);
  assert.equal(t.closed, true);
  await t.done;
  assert.equal(t.listenerCount('close'), 0, 'once() listeners removed themselves');
});

test("an 'error' event without listeners still throws, as EventEmitter's does", { timeout: 5000 }, () => {
  const t = new Thing();
  assert.throws(() => (t as Owned).emit('error', new Error('unhandled')), /unhandled/);
  t.close();
});

/** A viewer whose frame handler throws (a bug in one output). */
class BrokenViewer extends TestViewer {
  override onFrame(): void {
    throw new Error('viewer bug');
  }
}

test('a consumer whose frame handler throws leaves the other viewers playing', { timeout: 5000 }, async () => {
  let src: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], { idleTimeout: 0, startTimeout: 2000, backoff: { base: 20, max: 80, stableAfter: 10_000 } }, (url) => (src = new ScriptedSource(url, { outcome: 'ok', after: 1 })));
  const good = new TestViewer('good', { video: ['H264'] });
  const broken = new BrokenViewer('broken', { video: ['H264'] });
  const late = new TestViewer('late', { video: ['H264'] });
  await stream.attach(good);
  await stream.attach(broken);
  await stream.attach(late);
  // Another listener on the source's frames that throws (metrics, a snapshot): isolated as well.
  src!.on('frame', () => {
    throw new Error('frame listener bug');
  });
  assert.doesNotThrow(() => src!.emitFrame({ timestamp: 0, keyframe: true, data: [Buffer.from([0x65])] }), 'nothing reaches the source that emitted');
  src!.emitFrame({ timestamp: 3000, keyframe: false, data: [Buffer.from([0x41])] });
  assert.equal(broken.closed, true, 'the broken viewer is closed with its error');
  assert.equal(src!.closed, false, 'the source runs on');
  assert.equal(stream.state, 'live');
  assert.deepEqual(good.frames.map((f) => f.timestamp), [0, 3000]);
  assert.deepEqual(late.frames.map((f) => f.timestamp), [0, 3000], 'a viewer after the broken one in the fan-out still gets every frame');
  good.close();
  late.close();
  stream.close();
  await stream.done;
});

/** A viewer whose close() itself fails after its frame handler did. */
class BrokenTwiceViewer extends BrokenViewer {
  protected override onClose(): void {
    throw new Error('close bug');
  }
}

test('a consumer that throws on a frame and again while closing still leaves the others playing', { timeout: 5000 }, async () => {
  let src: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], { idleTimeout: 0, startTimeout: 2000, backoff: { base: 20, max: 80, stableAfter: 10_000 } }, (url) => (src = new ScriptedSource(url, { outcome: 'ok', after: 1 })));
  const broken = new BrokenTwiceViewer('broken', { video: ['H264'] });
  const good = new TestViewer('good', { video: ['H264'] });
  await stream.attach(broken);
  await stream.attach(good);
  assert.doesNotThrow(() => src!.emitFrame({ timestamp: 0, keyframe: true, data: [Buffer.from([0x65])] }));
  assert.equal(src!.closed, false);
  assert.deepEqual(good.frames.map((f) => f.timestamp), [0]);
  good.close();
  stream.close();
});

test('event maps are checked when compiling (tsc fails on an unused @ts-expect-error)', { timeout: 5000 }, () => {
  const t = new Thing();
  // @ts-expect-error: Thing has no 'pong' event
  t.on('pong', () => undefined);
  // @ts-expect-error: 'ping' listeners get a number
  t.on('ping', (s: string) => s.length);
  // @ts-expect-error: 'ping' is emitted with a number
  t.emit('ping', 'one');
  const s = new Stream('cam', [], { idleTimeout: 0, startTimeout: 100, backoff: { base: 1, max: 1, stableAfter: 1 } }, () => {
    throw new Error('no source');
  });
  // @ts-expect-error: a stream's 'state' listener gets a StreamState
  s.on('state', (n: number) => n);
  s.on('close', (reason?: Error) => reason);
  t.close();
  s.close();
});
