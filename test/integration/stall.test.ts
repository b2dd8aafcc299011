// Issue 12, item 9: a live source that stops delivering without failing (its ffmpeg stopped with
// SIGSTOP: the process, its pipes and its RTSP connection into camrelay all stay) used to stay
// "live" for ever. After stream_defaults.stall_timeout without a frame it is restarted like a
// failed source: backoff, a new ffmpeg, the same WebRTC session continuing on its frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { GstCamera } from '../helpers/gst-camera.js';
import { waitFor } from '../helpers/wait.js';
import { alive, assertBaseline, assertNoOrphans, baseline, spawnedPids } from '../helpers/fault-resources.js';
import { afterLongestGap, assertContinuous, assertKeyframeFirst, videoArrivals } from '../helpers/fault-rtp.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264';
const STALL_MS = 1500;

const on = (stream: string, msg: string) => (l: LogLine) => l.stream === stream && l.msg === msg;

interface StreamView {
  state: string;
  consumers: { id: string; type: string }[];
}

test('an ffmpeg source stopped with SIGSTOP is declared stalled after stall_timeout, killed and reaped; backoff → live on a new ffmpeg, the viewer keeps its session and gets video again', { timeout: 90000 }, async () => {
  // A long disconnect timeout: the viewer must survive the outage on its own, not be re-made.
  const config = testConfig({ demo: DEMO }, `stream_defaults: { stall_timeout: ${STALL_MS}ms, backoff: { base: 100ms, max: 800ms, stable_after: 30s } }`).replace('disconnect: 2s', 'disconnect: 15s');
  const app = await CamrelayProcess.start(config);
  const viewer = new Viewer();
  const arrivals = videoArrivals(viewer);
  let stopped: number | undefined;
  try {
    const base = await baseline(app);
    await viewer.connect(app.base, 'demo', 'sdp');
    const session = new URL(viewer.location!, 'http://x').searchParams.get('id');
    await waitFor('first picture', () => viewer.video.length >= 50, 10000);
    // Live for longer than stall_timeout while frames flow: no stall.
    await waitFor('live past stall_timeout', () => viewer.video.length >= 50 && Date.now() - arrivals[0]! > STALL_MS * 1.5, 10000);
    assert.equal(app.logs.filter(on('demo', 'source stalled')).length, 0, 'a source that sends is not stalled');
    const [ffmpeg, ...others] = app.children();
    assert.ok(ffmpeg !== undefined && others.length === 0, 'one ffmpeg');

    const mark = app.logs.length;
    const atStop = viewer.video.length;
    process.kill(ffmpeg, 'SIGSTOP');
    stopped = ffmpeg;
    const stoppedAt = Date.now();
    const stall = await app.waitLog(on('demo', 'source stalled'), STALL_MS * 4, mark);
    const detected = Date.now() - stoppedAt;
    assert.equal(stall.level, 40, 'logged at warn');
    assert.ok(typeof stall.silentMs === 'number' && stall.silentMs >= STALL_MS - 50, `how long it was silent: ${String(stall.silentMs)}`);
    assert.equal(stall.stallTimeout, STALL_MS);
    // The last frame came at most a frame before SIGSTOP; one tick (a quarter) of slack, plus load.
    assert.ok(detected >= STALL_MS - 100 && detected < STALL_MS * 1.25 + 1500, `declared stalled ${detected} ms after SIGSTOP`);
    const failed = await app.waitLog(on('demo', 'source failed'), 2000, mark);
    assert.match(String(failed.err), /^no frame for \d+(\.\d)? s \(stall_timeout 1\.5 s\)$/);
    assert.deepEqual((await app.json<StreamView>('/api/streams?src=demo')).body.consumers.map((c) => c.id), [session], 'the viewer stays attached meanwhile');

    // A stopped process ignores `q` and SIGTERM until SIGKILL: it must still be gone.
    await waitFor('the stopped ffmpeg killed and reaped', () => !alive(ffmpeg), 5000);
    stopped = undefined;
    await app.waitLog(on('demo', 'source live'), 15000, mark);
    const before = viewer.video.length;
    await waitFor('video from the new ffmpeg', () => viewer.video.length >= before + 50, 10000);

    const states = app.logs.slice(mark).filter(on('demo', 'stream state')).map((l) => String(l.state));
    assert.deepEqual(states, ['stopping', 'backoff', 'starting', 'live']);
    const pids = spawnedPids(app);
    assert.equal(pids.length, 2, 'one new ffmpeg');
    assert.deepEqual(app.children(), [pids[1]], 'only the new ffmpeg runs');
    assert.deepEqual((await app.json<StreamView>('/api/streams?src=demo')).body.consumers.map((c) => c.id), [session], 'the same session, the only consumer');
    assertContinuous(viewer.video, 'viewer video across the stall');
    const gap = afterLongestGap(arrivals, atStop);
    assert.ok(gap.ms >= STALL_MS - 100, `the stall is the longest silence (${gap.ms} ms)`);
    assertKeyframeFirst(viewer.video.slice(gap.index), 'from the new ffmpeg');
    const m = await scrape(app);
    assert.equal(metric(m, 'camrelay_source_failures_total', { stream: 'demo', reason: 'stall' }), 1, 'counted as a stall');
    assert.equal(metric(m, 'camrelay_source_failures_total', { stream: 'demo', reason: 'error' }), 0);
    assert.equal(metric(m, 'camrelay_backoff_retries_total', { stream: 'demo' }), 1);
    console.log(`# ffmpeg SIGSTOP: stalled after ${detected} ms (silent ${String(stall.silentMs)} ms), viewer saw ${gap.ms} ms without video, states ${states.join(' → ')}`);

    assert.equal(await viewer.hangUp(app.base), 200);
    await waitFor('stream idle', async () => (await app.json<StreamView>('/api/streams?src=demo')).body.state === 'idle', 5000);
    await assertNoOrphans(app, 'after the viewer left');
    await assertBaseline(app, base, 'after the viewer left');
  } finally {
    if (stopped !== undefined && alive(stopped)) process.kill(stopped, 'SIGCONT');
    await viewer.close();
    await app.stop();
  }
});

test('a native RTSP camera that goes quiet (SIGSTOP) with a long read timeout is restarted after stall_timeout, not the read timeout; after SIGCONT the same viewer gets video', { timeout: 90000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264' });
  // #timeout=30: the RTSP client's own read timeout would wait 30 s; stall_timeout is 1.5 s.
  const config = testConfig({ cam: camera.url(undefined, '#timeout=30') }, `stream_defaults: { stall_timeout: ${STALL_MS}ms, backoff: { base: 100ms, max: 800ms, stable_after: 30s } }`).replace('disconnect: 2s', 'disconnect: 15s');
  const app = await CamrelayProcess.start(config);
  const viewer = new Viewer();
  let paused = false;
  try {
    await viewer.connect(app.base, 'cam', 'sdp');
    const session = new URL(viewer.location!, 'http://x').searchParams.get('id');
    await waitFor('first picture', () => viewer.video.length >= 50, 10000);
    const mark = app.logs.length;
    camera.pause();
    paused = true;
    const pausedAt = Date.now();
    await app.waitLog(on('cam', 'source stalled'), STALL_MS * 4, mark);
    const detected = Date.now() - pausedAt;
    const failed = await app.waitLog(on('cam', 'source failed'), 2000, mark);
    assert.match(String(failed.err), /^no frame for .* \(stall_timeout 1\.5 s\)$/, 'the stall, not the read timeout');
    assert.ok(detected < 10000, `declared stalled ${detected} ms after SIGSTOP`);
    camera.resume();
    paused = false;
    await app.waitLog(on('cam', 'source live'), 20000, mark);
    const before = viewer.video.length;
    await waitFor('video again after SIGCONT', () => viewer.video.length >= before + 50, 15000);
    assert.deepEqual((await app.json<StreamView>('/api/streams?src=cam')).body.consumers.map((c) => c.id), [session], 'the same session, the only consumer');
    const m = await scrape(app);
    assert.equal(metric(m, 'camrelay_source_failures_total', { stream: 'cam', reason: 'stall' }), 1);
    console.log(`# camera SIGSTOP with #timeout=30: stalled after ${detected} ms`);
  } finally {
    if (paused) camera.resume();
    await viewer.close();
    await app.stop();
    await camera.stop();
  }
});
