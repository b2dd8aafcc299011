import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Stream, type BackoffEvent, type StreamSettings } from '../../src/core/stream.js';
import { SourceError, StartTimeoutError } from '../../src/core/errors.js';
import { StallError } from '../../src/core/stall-watch.js';
import { liveObjects } from '../../src/core/objects.js';
import { setRootLogger } from '../../src/core/log.js';
import { pino } from 'pino';
import { ScriptedSource, TestViewer, OPUS, type ScriptedStart } from '../helpers/fake-parts.js';
import { waitEvent, waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

const settings = (over: Partial<StreamSettings> = {}): StreamSettings => ({
  idleTimeout: 0,
  startTimeout: 2000,
  backoff: { base: 40, max: 320, stableAfter: 10_000 },
  ...over,
});

/** A stream whose n-th source start follows scripts[n] (the last script repeats). */
function scripted(scripts: ScriptedStart[], over: Partial<StreamSettings> = {}, random?: () => number) {
  const made: ScriptedSource[] = [];
  const stream = new Stream('cam', ['test://cam'], settings(over), (url) => {
    const s = new ScriptedSource(url, scripts[Math.min(made.length, scripts.length - 1)]!);
    made.push(s);
    return s;
  }, random);
  return { stream, made };
}

const liveSources = (made: ScriptedSource[]) => made.filter((s) => !s.closed).length;

/**
 * Resolves once `v` holds a frame that `last` picks. The stream hands frames out in time slices
 * (SlicedFanOut): when one runs out (a process descheduled under CPU load, a GC pause) the rest
 * follow a turn later, so a frame is not always there when emitFrame returns. Each viewer gets
 * its frames in order, so by then every frame emitted before `last` has been handled for `v`.
 * When it never comes, the assertion that follows says what did.
 */
function received(v: TestViewer, last: (f: TestViewer['frames'][number]) => boolean): Promise<unknown> {
  return waitFor('the last frame emitted', () => v.frames.some(last), 2000).catch(() => undefined);
}

test('lazy: no source before the first viewer, one source for three viewers', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: 'ok', after: 5 }]);
  assert.equal(made.length, 0);
  assert.equal(stream.state, 'idle');
  const vs = [new TestViewer('a'), new TestViewer('b'), new TestViewer('c')];
  const tracks = await Promise.all(vs.map((v) => stream.attach(v)));
  assert.equal(made.length, 1);
  assert.equal(stream.state, 'live');
  assert.deepEqual(tracks[2]!.map((t) => t.codec.name), ['H264', 'OPUS']);
  vs[0]!.close();
  vs[1]!.close();
  assert.equal(made[0]!.closed, false, 'source must keep running while one viewer remains');
  vs[2]!.close();
  assert.equal(made[0]!.closed, true, 'the last viewer leaving stops the source at once');
  await waitFor('idle', () => stream.state === 'idle', 1000);
  stream.close();
});

test('idle_timeout keeps the source for that long, and a returning viewer cancels the stop', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: 'ok', after: 0 }], { idleTimeout: 150 });
  const a = new TestViewer('a');
  await stream.attach(a);
  a.close();
  assert.equal(made[0]!.closed, false);
  const b = new TestViewer('b');
  await stream.attach(b);
  assert.equal(made.length, 1, 'the viewer who returns within idle_timeout reuses the running source');
  const left = Date.now();
  b.close();
  await waitEvent(made[0]!, 'close', 2000);
  assert.ok(Date.now() - left >= 140, 'source stopped only after idle_timeout');
  stream.close();
});

test('video starts at a keyframe for every viewer; audio flows at once', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: 'ok', after: 0 }]);
  const a = new TestViewer('a');
  await stream.attach(a);
  const src = made[0]!;
  src.emitFrame({ timestamp: 0, keyframe: false, data: [Buffer.from([0x41])] });
  src.emitFrame({ timestamp: 10, keyframe: false, data: [Buffer.from([0x01])] }, OPUS);
  src.emitFrame({ timestamp: 3000, keyframe: true, data: [Buffer.from([0x65])] });
  src.emitFrame({ timestamp: 6000, keyframe: false, data: [Buffer.from([0x41])] });
  await received(a, (f) => f.track.kind === 'video' && f.timestamp === 6000);
  assert.deepEqual(a.frames.map((f) => `${f.track.kind}:${f.timestamp}`), ['audio:10', 'video:3000', 'video:6000']);
  const audioOnly = new TestViewer('b', { audio: ['OPUS'] });
  await stream.attach(audioOnly);
  src.emitFrame({ timestamp: 9000, keyframe: false, data: [Buffer.from([0x41])] });
  src.emitFrame({ timestamp: 20, keyframe: false, data: [Buffer.from([0x01])] }, OPUS);
  await received(audioOnly, (f) => f.track.kind === 'audio' && f.timestamp === 20);
  assert.deepEqual(audioOnly.frames.map((f) => f.track.kind), ['audio']);
  stream.close();
  assert.ok(a.closed && audioOnly.closed, 'closing the stream closes its consumers');
});

test('failures while a viewer waits retry with exponential backoff and full jitter', { timeout: 10000 }, async () => {
  const fail = new SourceError('ffmpeg exited with code 1: Invalid data found when processing input');
  // random() = 0.5 makes each delay exactly half its ceiling, so the sequence is known.
  const { stream, made } = scripted([{ outcome: fail, after: 0 }], { startTimeout: 5000 }, () => 0.5);
  const events: BackoffEvent[] = [];
  let maxAlive = 0;
  stream.on('backoff', (e: BackoffEvent) => events.push(e));
  stream.on('source', () => (maxAlive = Math.max(maxAlive, liveSources(made))));
  const v = new TestViewer('a');
  const attached = stream.attach(v);
  attached.catch(() => {});
  await waitFor('six retries', () => events.length >= 6, 5000);
  assert.deepEqual(events.slice(0, 6).map((e) => e.ceiling), [40, 80, 160, 320, 320, 320]);
  assert.deepEqual(events.slice(0, 6).map((e) => e.delay), [20, 40, 80, 160, 160, 160]);
  assert.match(events[0]!.error.message, /Invalid data found/);
  assert.equal(maxAlive, 1, 'never two sources alive at once');
  v.close();
  await assert.rejects(attached, /consumer left/);
  const count = made.length;
  await waitFor('idle', () => stream.state === 'idle', 1000);
  // The longest backoff is 320 ms: wait past it (by watching for a start that must not come).
  const restarted = await waitEvent(stream, 'source', 700).then(() => true, () => false);
  assert.equal(restarted, false, 'no retry after the viewer left');
  assert.equal(made.length, count);
  stream.close();
});

test('jitter draws each delay below its ceiling, from the given random source', { timeout: 10000 }, async () => {
  const draws = [0.9, 0.1, 0.99, 0.0];
  let i = 0;
  const { stream } = scripted([{ outcome: new SourceError('boom'), after: 0 }], {}, () => draws[i++ % draws.length]!);
  const events: BackoffEvent[] = [];
  stream.on('backoff', (e: BackoffEvent) => events.push(e));
  const v = new TestViewer('a');
  stream.attach(v).catch(() => {});
  await waitFor('four retries', () => events.length >= 4, 5000);
  assert.deepEqual(events.slice(0, 4).map((e) => e.delay), [36, 8, 158, 0]);
  v.close();
  stream.close();
});

test('a viewer waiting gets the start timeout with the last cause', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: new SourceError('connection refused'), after: 0 }], { startTimeout: 300 });
  const v = new TestViewer('a');
  const err = await stream.attach(v).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof StartTimeoutError);
  assert.match(err.message, /did not start within 300 ms: connection refused/);
  await waitFor('idle', () => stream.state === 'idle', 1000);
  assert.equal(liveSources(made), 0);
  v.close();
  stream.close();
});

test('a permanent error (missing file) reaches the waiting viewer at once, with no retry', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: new SourceError('file not found: /media/x.mp4', true), after: 0 }]);
  const v = new TestViewer('a');
  const t0 = Date.now();
  await assert.rejects(stream.attach(v), /file not found: \/media\/x\.mp4/);
  assert.ok(Date.now() - t0 < 500);
  await waitFor('idle', () => stream.state === 'idle', 1000);
  assert.equal(made.length, 1);
  v.close();
  stream.close();
});

test('a camera that drops while watched reconnects, viewers stay attached and get the new frames', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: 'ok', after: 0 }]);
  const v = new TestViewer('a');
  await stream.attach(v);
  made[0]!.fail();
  await waitFor('live again', () => stream.state === 'live' && made.length === 2, 2000);
  assert.equal(v.closed, false);
  made[1]!.emitFrame({ timestamp: 1, keyframe: true, data: [Buffer.from([0x65])] });
  assert.equal(v.frames.length, 1);
  v.close();
  assert.equal(made[1]!.closed, true);
  stream.close();
});

test('a viewer who leaves while the source starts stops it; a start finishing late is discarded', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: 'ok' }]);
  const v = new TestViewer('a');
  const p = stream.attach(v);
  assert.equal(stream.state, 'starting');
  v.close();
  await assert.rejects(p, /consumer left/);
  assert.equal(made[0]!.closed, true);
  made[0]!.release();
  await waitFor('idle', () => stream.state === 'idle', 1000);
  stream.close();
});

test('the source is told what the consumers present at its start accept, merged per kind', { timeout: 5000 }, async () => {
  const { stream, made } = scripted([{ outcome: 'ok', after: 5 }]);
  const a = new TestViewer('a', { video: ['H264'] });
  await stream.attach(a);
  assert.deepEqual(made[0]!.want, { video: ['H264'] });
  // After a reconnect, the new source is asked for what everyone attached by then accepts.
  const b = new TestViewer('b', { video: ['H265', 'H264'], audio: ['OPUS'] });
  await stream.attach(b);
  made[0]!.fail();
  await waitFor('second source live', () => made.length === 2 && stream.state === 'live', 2000);
  assert.deepEqual(made[1]!.want, { video: ['H264', 'H265'], audio: ['OPUS'] });
  stream.close();
});

/** Emits a video frame from `src` every `everyMs` until the returned stop is called (a camera that sends). */
function feed(src: ScriptedSource, everyMs: number): () => void {
  let n = 0;
  const t = setInterval(() => src.emitFrame({ timestamp: n * 3000, keyframe: n++ % 10 === 0, data: [Buffer.from([0x65])] }), everyMs);
  return () => clearInterval(t);
}

/** Active timers of this process (setTimeout and setInterval alike). */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('a live source that sends no frame for stall_timeout is restarted like a failed one; the viewer stays and gets the new source\'s frames', { timeout: 10000 }, async () => {
  const { stream, made } = scripted([{ outcome: 'ok', after: 0 }], { stallTimeout: 200 });
  const states: string[] = [];
  const backoffs: BackoffEvent[] = [];
  const v = new TestViewer('a');
  await stream.attach(v);
  stream.on('state', (s: string) => states.push(s));
  stream.on('backoff', (e: BackoffEvent) => backoffs.push(e));
  const first = made[0]!;
  // Frames every 40 ms for 3 × the timeout: no stall.
  const stopFeeding = feed(first, 40);
  const fed = await waitEvent(first, 'close', 600).then(() => false, () => true);
  stopFeeding();
  assert.ok(fed, 'a source that sends is not declared stalled');
  assert.ok(v.frames.length >= 10, `frames delivered meanwhile (${v.frames.length})`);
  const lastFrameAt = Date.now();
  const [reason] = await waitEvent<[Error]>(first, 'close', 2000);
  const silent = Date.now() - lastFrameAt;
  assert.ok(reason instanceof StallError, `closed with ${String(reason)}`);
  assert.match(reason.message, /^no frame for \d+(\.\d)? s \(stall_timeout 0\.2 s\)$/);
  assert.ok(silent >= 195 && silent < 200 * 1.25 + 150, `declared after ${silent} ms of silence`);
  await waitFor('live again on a new source', () => stream.state === 'live' && made.length === 2, 2000);
  assert.deepEqual(states, ['stopping', 'backoff', 'starting', 'live']);
  assert.equal(backoffs.length, 1);
  assert.ok(backoffs[0]!.error instanceof StallError);
  assert.equal(v.closed, false, 'the viewer stays attached');
  const before = v.frames.length;
  made[1]!.emitFrame({ timestamp: 1, keyframe: true, data: [Buffer.from([0x65])] });
  assert.equal(v.frames.length, before + 1, 'and gets the new source\'s frames');
  v.close();
  stream.close();
});

test('the stall timer exists only while a source is live: not before, not after the last viewer left, not after close', { timeout: 10000 }, async () => {
  const base = timers();
  const { stream, made } = scripted([{ outcome: 'ok', after: 0 }], { stallTimeout: 5000 });
  assert.equal(timers(), base, 'no timer for an idle stream');
  const v = new TestViewer('a');
  await stream.attach(v);
  assert.equal(timers(), base + 1, 'one interval timer while live');
  // Frames do not make timers: one tick's worth of them later, still one.
  for (let i = 0; i < 100; i++) made[0]!.emitFrame({ timestamp: i, keyframe: i === 0, data: [Buffer.from([0x65])] });
  assert.equal(timers(), base + 1, 'frames add no timer');
  v.close();
  await waitFor('idle', () => stream.state === 'idle', 1000);
  assert.equal(timers(), base, 'released when the source stops');
  const w = new TestViewer('b');
  await stream.attach(w);
  assert.equal(timers(), base + 1);
  stream.close();
  assert.equal(timers(), base, 'released when the stream closes');
  // A stream without stall_timeout never arms one.
  const plain = scripted([{ outcome: 'ok', after: 0 }]);
  const x = new TestViewer('c');
  await plain.stream.attach(x);
  assert.equal(timers(), base);
  plain.stream.close();
});

test('live object counts return to zero', { timeout: 5000 }, async () => {
  const mine = () => {
    const o = liveObjects();
    return { Stream: o.Stream ?? 0, TestSource: o.TestSource ?? 0, TestViewer: o.TestViewer ?? 0 };
  };
  await waitFor('no live test objects', () => Object.values(mine()).every((n) => n === 0), 2000).catch(() => {});
  assert.deepEqual(mine(), { Stream: 0, TestSource: 0, TestViewer: 0 });
});
