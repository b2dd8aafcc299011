// Issue 6, fault table (sources): a camera killed mid-stream, a camera stalled (SIGSTOP, SIGCONT),
// a camera answering 503 before it recovers, an ffmpeg killed by a signal. Each against camrelay
// as a real process, a real camera (gst-rtsp-server) or ffmpeg, and a real werift viewer: the
// viewer keeps its session and sees one continuous RTP stream resuming on a keyframe; nothing
// leaks and no child outlives its use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { GstCamera } from '../helpers/gst-camera.js';
import { Viewer, HttpError } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';
import { BusyFront } from '../helpers/fault-busy-front.js';
import { alive, assertBaseline, assertNoOrphans, assertOneChildAtATime, baseline, connectionsTo, spawnedPids } from '../helpers/fault-resources.js';
import { afterLongestGap, assertContinuous, assertKeyframeFirst, videoArrivals } from '../helpers/fault-rtp.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264';
const ESTABLISHED = '01';

/**
 * Small backoff so that recovery is quick; a long disconnect timeout because a loaded 2-core
 * machine may leave a live peer silent for more than the usual test's 2 s.
 */
function faultConfig(streams: Record<string, string>, lifecycle = ''): string {
  const defaults = `stream_defaults: { backoff: { base: 100ms, max: 800ms, stable_after: 30s }${lifecycle ? `, ${lifecycle}` : ''} }`;
  return testConfig(streams, defaults).replace('disconnect: 2s', 'disconnect: 15s');
}

const on = (stream: string, msg: string) => (l: LogLine) => l.stream === stream && l.msg === msg;
const stateIs = (stream: string, state: string) => (l: LogLine) => l.stream === stream && l.msg === 'stream state' && l.state === state;

interface StreamView {
  state: string;
  consumers: { id: string; type: string }[];
}

async function streamView(app: CamrelayProcess, name: string): Promise<StreamView> {
  return (await app.json<StreamView>(`/api/streams?src=${name}`)).body;
}

/** Connections the camera accepted and has not seen closed, counting its events from index `from`. */
function openSince(camera: GstCamera, from: number): number {
  const ev = camera.events.slice(from);
  return ev.filter((e) => e.event === 'connected').length - ev.filter((e) => e.event === 'closed').length;
}

/** The session id of a viewer connected with the 'sdp' form (from its Location). */
function sessionOf(v: Viewer): string {
  const id = new URL(v.location!, 'http://x').searchParams.get('id');
  assert.ok(id, 'the answer gave a session location');
  return id;
}

/** The states the stream went through after log line `from`, in order. */
function statesSince(app: CamrelayProcess, stream: string, from: number): string[] {
  return app.logs.slice(from).filter((l) => l.stream === stream && l.msg === 'stream state').map((l) => String(l.state));
}

/** Waits for video from a new source: `more` packets after index `before`. */
async function videoAgain(v: Viewer, before: number, what: string, more = 50, ms = 10000): Promise<void> {
  await waitFor(what, () => v.video.length >= before + more, ms);
}

test('camera killed (SIGKILL) mid-stream and back on the same port: backoff → live, the viewer keeps its session, RTP continuous, keyframe first, nothing left', { timeout: 90000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264' });
  const app = await CamrelayProcess.start(faultConfig({ cam: camera.url() }));
  const viewer = new Viewer();
  const arrivals = videoArrivals(viewer);
  try {
    const base = await baseline(app);
    await viewer.connect(app.base, 'cam', 'sdp');
    const session = sessionOf(viewer);
    await videoAgain(viewer, 0, 'first picture', 50);
    assert.equal(camera.openConnections(), 1);
    const conn = connectionsTo(app.pid, camera.port).filter((c) => c.state === ESTABLISHED);
    assert.equal(conn.length, 1, 'one connection to the camera');

    const mark = app.logs.length;
    const killedAt = Date.now();
    const atKill = viewer.video.length;
    await camera.kill();
    const failed = await app.waitLog(on('cam', 'source failed'), 8000, mark);
    const detected = Date.now() - killedAt;
    await app.waitLog(stateIs('cam', 'backoff'), 5000, mark);
    await waitFor('the dead connection closed', () => !connectionsTo(app.pid, camera.port).some((c) => c.localPort === conn[0]!.localPort), 3000);
    const before = viewer.video.length;
    // The killed camera never reported its connection closed: count the new process's events only.
    const camMark = camera.events.length;
    const openNow = () => openSince(camera, camMark);
    await camera.restart();
    const restartedAt = Date.now();
    await app.waitLog(on('cam', 'source live'), 15000, mark);
    await videoAgain(viewer, before, 'video again after the restart');
    const recovered = Date.now() - restartedAt;

    const states = statesSince(app, 'cam', mark);
    assert.deepEqual(states.slice(0, 2), ['stopping', 'backoff'], `states: ${states.join(' → ')}`);
    assert.equal(states.at(-1), 'live', `states: ${states.join(' → ')}`);
    const view = await streamView(app, 'cam');
    assert.deepEqual(view.consumers.map((c) => c.id), [session], 'the same session, the only consumer');
    assertContinuous(viewer.video, 'viewer video across the camera kill');
    const gap = afterLongestGap(arrivals, atKill);
    assert.ok(gap.index <= before + 1, `the outage is the longest silence (after packet ${gap.index}, ${gap.ms} ms; ${before} before the restart)`);
    assertKeyframeFirst(viewer.video.slice(gap.index), 'after the camera came back');
    assert.equal(openNow(), 1, 'the restarted camera sees one connection');
    assert.equal(connectionsTo(app.pid, camera.port).length, 1, 'camrelay holds one connection to the camera');
    assert.equal(app.children().length, 0, 'a native RTSP camera runs no child');
    console.log(`# camera kill: detected in ${detected} ms (${String(failed.err)}), video again ${recovered} ms after the camera was back (viewer saw ${gap.ms} ms without video); ${viewer.video.length} packets, states ${states.join(' → ')}`);

    const teardowns = camera.requests('TEARDOWN').length;
    assert.equal(await viewer.hangUp(app.base), 200);
    await waitFor('stream idle', async () => (await streamView(app, 'cam')).state === 'idle', 5000);
    await waitFor('camera connection closed after a TEARDOWN', () => openNow() === 0 && camera.requests('TEARDOWN').length > teardowns, 3000);
    assert.equal(connectionsTo(app.pid, camera.port).length, 0, 'no connection to the camera left');
    await assertBaseline(app, base, 'after the viewer left');
  } finally {
    await viewer.close();
    await app.stop();
    await camera.stop();
  }
});

test('camera stalled (SIGSTOP): declared dead by the read timeout, stale connection closed, backoff; SIGCONT: the viewer gets video again', { timeout: 90000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264' });
  // #timeout=2: read and request timeout 2 s (go2rtc's fragment), instead of the default 5 s.
  const app = await CamrelayProcess.start(faultConfig({ cam: camera.url(undefined, '#timeout=2') }));
  const viewer = new Viewer();
  const arrivals = videoArrivals(viewer);
  let paused = false;
  try {
    const base = await baseline(app);
    await viewer.connect(app.base, 'cam', 'sdp');
    const session = sessionOf(viewer);
    await videoAgain(viewer, 0, 'first picture', 50);
    const conns = connectionsTo(app.pid, camera.port).filter((c) => c.state === ESTABLISHED);
    assert.equal(conns.length, 1, 'one connection to the camera');
    const stale = conns[0]!.localPort;

    const mark = app.logs.length;
    const stoppedAt = Date.now();
    const atStop = viewer.video.length;
    camera.pause();
    paused = true;
    const failed = await app.waitLog(on('cam', 'source failed'), 10000, mark);
    const detected = Date.now() - stoppedAt;
    assert.equal(failed.err, 'camera sent nothing for 2 s');
    // The last packet came at most a frame or two before the stop; 2 s of silence is the rule.
    assert.ok(detected >= 1500 && detected < 2000 + 3000, `declared dead after ${detected} ms`);
    await app.waitLog(stateIs('cam', 'backoff'), 5000, mark);
    // TEARDOWN and FIN go out, the stopped camera answers nothing, the grace (300 ms) ends it.
    await waitFor('the stale connection to the stopped camera closed', () => !connectionsTo(app.pid, camera.port).some((c) => c.localPort === stale), 3000);
    const closedAfter = Date.now() - stoppedAt - detected;
    // Retries meanwhile connect (the kernel accepts for the stopped camera) and time out after 2 s.
    await app.waitLog((l) => l.stream === 'cam' && l.msg === 'source failed' && /no answer within 2000 ms/.test(String(l.err)), 10000, mark);
    assert.deepEqual((await streamView(app, 'cam')).consumers.map((c) => c.id), [session], 'the viewer stays attached while the camera is stalled');
    const before = viewer.video.length;

    const resumedAt = Date.now();
    const resumeMark = app.logs.length;
    camera.resume();
    paused = false;
    await app.waitLog(on('cam', 'source live'), 15000, resumeMark);
    await videoAgain(viewer, before, 'video again after SIGCONT');
    const recovered = Date.now() - resumedAt;
    const retries = app.logs.slice(mark).filter(on('cam', 'retrying source')).length;

    assert.deepEqual((await streamView(app, 'cam')).consumers.map((c) => c.id), [session], 'the same session, the only consumer');
    assertContinuous(viewer.video, 'viewer video across the stall');
    const gap = afterLongestGap(arrivals, atStop);
    assert.ok(gap.index <= before + 1 && gap.ms >= 1800, `the stall is the longest silence (after packet ${gap.index}, ${gap.ms} ms)`);
    assertKeyframeFirst(viewer.video.slice(gap.index), 'after SIGCONT');
    // Of all the connections made while it was stopped, only the one playing is left.
    await waitFor('one connection to the camera', () => connectionsTo(app.pid, camera.port).length === 1, 5000);
    console.log(`# camera stall: dead after ${detected} ms, stale socket closed ${closedAfter} ms later, ${retries} retries while stopped, video ${recovered} ms after SIGCONT`);

    assert.equal(await viewer.hangUp(app.base), 200);
    await waitFor('stream idle', async () => (await streamView(app, 'cam')).state === 'idle', 5000);
    await waitFor('no connection to the camera from camrelay', () => connectionsTo(app.pid, camera.port).length === 0, 3000);
    await waitFor('the camera saw every connection close', () => camera.openConnections() === 0, 5000);
    await assertBaseline(app, base, 'after the viewer left');
  } finally {
    if (paused) camera.resume();
    await viewer.close();
    await app.stop();
    await camera.stop();
  }
});

test('camera answering 503: retries back off until it recovers and the waiting viewer gets video; a camera busy for longer than start_timeout gives an error naming 503, and no retry once the viewer left', { timeout: 90000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264' });
  const recovering = await BusyFront.start(camera.port, 3);
  const busy = await BusyFront.start(camera.port, Infinity);
  const app = await CamrelayProcess.start(
    `${faultConfig({ cam: recovering.url() }).replace(/backoff: \{ base: 100ms, max: 800ms/, 'backoff: { base: 200ms, max: 1600ms')}  busy:\n    sources: ["${busy.url()}"]\n    start_timeout: 3s\n`,
  );
  const viewer = new Viewer();
  const late = new Viewer();
  try {
    const base = await baseline(app);
    const t0 = Date.now();
    await viewer.connect(app.base, 'cam', 'sdp');
    const answered = Date.now() - t0;
    await videoAgain(viewer, 0, 'video once the camera recovered', 50);
    assert.equal(recovering.refused, 3, 'three DESCRIBEs answered 503');
    assert.equal(recovering.passed, 1, 'then one connection that plays');
    assert.equal(camera.connections(), 1, 'the real camera saw one connection');
    assertKeyframeFirst(viewer.video, 'first picture');
    // Full jitter: each wait is drawn below a ceiling that doubles (200, 400, 800 ms).
    const retries = app.logs.filter(on('cam', 'retrying source'));
    assert.deepEqual(retries.map((r) => r.ceiling), [200, 400, 800]);
    assert.deepEqual(retries.map((r) => r.attempt), [0, 1, 2]);
    for (const r of retries) assert.match(String(r.err), /^DESCRIBE: 503 Service Unavailable$/);
    const gaps = recovering.arrivals.slice(1).map((t, i) => t - recovering.arrivals[i]!);
    retries.forEach((r, i) => assert.ok(gaps[i]! >= (r.delay as number) - 5, `retry ${i}: ${gaps[i]} ms after the last attempt, drawn ${String(r.delay)} ms`));
    let m = await scrape(app);
    assert.equal(metric(m, 'camrelay_backoff_retries_total', { stream: 'cam' }), 3);
    assert.equal(metric(m, 'camrelay_source_failures_total', { stream: 'cam' }), 3);
    assert.equal(metric(m, 'camrelay_source_starts_total', { stream: 'cam' }), 4);
    console.log(`# camera 503 ×3: answer after ${answered} ms, retry gaps ${gaps.join(', ')} ms (drawn ${retries.map((r) => String(r.delay)).join(', ')})`);
    assert.equal(await viewer.hangUp(app.base), 200);

    // Busy for good: the viewer's wait ends at start_timeout with the camera's own words.
    const t1 = Date.now();
    const err = await late.connect(app.base, 'busy', 'sdp').then(() => undefined, (e: unknown) => e);
    const waited = Date.now() - t1;
    assert.ok(err instanceof HttpError, `an HTTP error: ${String(err)}`);
    assert.equal(err.status, 504);
    assert.match(err.body, /did not start within 3000 ms: DESCRIBE: 503 Service Unavailable/);
    assert.ok(waited >= 2900 && waited < 3000 + 3000, `waited ${waited} ms`);
    await waitFor('busy stream idle', async () => (await streamView(app, 'busy')).state === 'idle', 3000);
    const attempts = busy.arrivals.length;
    assert.ok(attempts >= 3, `several attempts while the viewer waited (${attempts})`);
    // Longer than the largest backoff ceiling (1.6 s): a scheduled retry would have come by now.
    const again = await app.nextLog(on('busy', 'source starting'), 2500).then(() => true, () => false);
    assert.equal(again, false, 'no retry after the viewer left');
    assert.equal(busy.arrivals.length, attempts, 'no connection to the busy camera after the viewer left');
    await waitFor('no connection open to either front', () => busy.open === 0 && recovering.open === 0, 3000);
    m = await scrape(app);
    assert.equal(metric(m, 'camrelay_source_starts_total', { stream: 'busy' }), attempts);
    console.log(`# camera 503 for good: error after ${waited} ms, ${attempts} attempts, none after`);
    await assertBaseline(app, base, 'after both viewers');
  } finally {
    await viewer.close();
    await late.close();
    await app.stop();
    await recovering.close();
    await busy.close();
    await camera.stop();
  }
});

test('ffmpeg killed by SIGKILL: logged as killed by the signal, backoff, one new ffmpeg, the viewer continues on it; none left after the viewer leaves', { timeout: 90000 }, async () => {
  const app = await CamrelayProcess.start(faultConfig({ demo: DEMO }));
  const viewer = new Viewer();
  const arrivals = videoArrivals(viewer);
  try {
    const base = await baseline(app);
    await viewer.connect(app.base, 'demo', 'sdp');
    const session = sessionOf(viewer);
    await videoAgain(viewer, 0, 'first picture', 50);
    const [first, ...others] = app.children();
    assert.ok(first !== undefined && others.length === 0, 'one ffmpeg');
    assert.deepEqual(spawnedPids(app), [first]);

    const mark = app.logs.length;
    const before = viewer.video.length;
    const killedAt = Date.now();
    process.kill(first, 'SIGKILL');
    const failed = await app.waitLog(on('demo', 'source failed'), 8000, mark);
    assert.match(String(failed.err), /^ffmpeg killed by SIGKILL/, 'the log names the signal');
    await app.waitLog(stateIs('demo', 'backoff'), 5000, mark);
    // Polled while it recovers: never two ffmpegs (the log order below proves it exactly).
    let peak = 0;
    await waitFor('a new ffmpeg live', () => {
      peak = Math.max(peak, app.children().length);
      return app.logs.slice(mark).some(on('demo', 'source live'));
    }, 15000, 10);
    await videoAgain(viewer, before, 'video from the new ffmpeg');
    const recovered = Date.now() - killedAt;

    const pids = spawnedPids(app);
    assert.equal(pids.length, 2, 'one new ffmpeg');
    assert.notEqual(pids[1], first);
    assert.equal(alive(first), false, 'the killed ffmpeg is reaped');
    assert.deepEqual(app.children(), [pids[1]], 'only the new ffmpeg runs');
    assert.ok(peak <= 1, `children seen while recovering: ${peak}`);
    assertOneChildAtATime(app);
    assert.deepEqual((await streamView(app, 'demo')).consumers.map((c) => c.id), [session], 'the same session, the only consumer');
    assertContinuous(viewer.video, 'viewer video across the ffmpeg kill');
    const gap = afterLongestGap(arrivals, before);
    assertKeyframeFirst(viewer.video.slice(gap.index), 'from the new ffmpeg');
    const states = statesSince(app, 'demo', mark);
    assert.deepEqual(states, ['stopping', 'backoff', 'starting', 'live']);
    const m = await scrape(app);
    assert.equal(metric(m, 'camrelay_source_failures_total', { stream: 'demo' }), 1);
    assert.equal(metric(m, 'camrelay_source_starts_total', { stream: 'demo' }), 2);
    console.log(`# ffmpeg kill: ${String(failed.err).slice(0, 60)}; video again ${recovered} ms after the kill (viewer saw ${gap.ms} ms without video)`);

    assert.equal(await viewer.hangUp(app.base), 200);
    await waitFor('stream idle', async () => (await streamView(app, 'demo')).state === 'idle', 5000);
    await assertNoOrphans(app, 'after the viewer left');
    await assertBaseline(app, base, 'after the viewer left');
  } finally {
    await viewer.close();
    await app.stop();
  }
});
