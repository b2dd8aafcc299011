// Issue 2 end to end: camrelay as a real process, real ffmpeg, real werift viewers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, nonZero, testConfig } from '../helpers/camrelay-process.js';
import { Viewer, HttpError } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';
let app: CamrelayProcess;
let baseline: { children: number; sockets: { tcp: number; udp: number; other: number }; objects: Record<string, number>; fds: number };

before(async () => {
  app = await CamrelayProcess.start(testConfig({ demo: DEMO, clip: 'ffmpeg:/nonexistent/clip.mp4#video=h264', usb: 'ffmpeg:device?video=/dev/video99&video_size=640x480&framerate=15#video=h264', secret: 'rtsp://admin:hunter2@127.0.0.1:9/live' }));
  baseline = { children: app.children().length, sockets: app.sockets(), objects: await app.objects(), fds: app.fds() };
});

after(async () => {
  const code = await app.stop();
  assert.equal(code, 0, 'graceful shutdown exits 0');
});


async function backToBaseline(what: string, ms = 3000): Promise<void> {
  await waitFor(`${what}: resources back to baseline`, async () => {
    const objects = await app.objects();
    return app.children().length === 0 && JSON.stringify(app.sockets()) === JSON.stringify(baseline.sockets) && JSON.stringify(nonZero(objects)) === JSON.stringify(nonZero(baseline.objects));
  }, ms).catch(() => {});
  assert.equal(app.children().length, 0, `${what}: no ffmpeg left`);
  assert.deepEqual(app.sockets(), baseline.sockets, `${what}: sockets`);
  assert.deepEqual(nonZero(await app.objects()), nonZero(baseline.objects), `${what}: live objects`);
}

test('a WebRTC viewer plays the demo: 50 H.264 packets with a whole keyframe and Opus within 5 s of the offer', { timeout: 30000 }, async () => {
  assert.equal(app.children().length, 0, 'no ffmpeg before the first viewer');
  const v = new Viewer();
  const t0 = Date.now();
  await v.connect(app.base, 'demo', 'sdp');
  await waitFor('50 H.264 packets incl. a keyframe with SPS/PPS', () => v.video.length >= 50 && v.sawKeyframeWithParams(), 5000 - (Date.now() - t0));
  await waitFor('Opus packets', () => v.audio.length >= 10, Math.max(500, 5000 - (Date.now() - t0)));
  assert.equal(v.audio[0]!.header.payloadType > 0, true);
  assert.equal(app.children().length, 1, 'one ffmpeg while one viewer watches');
  const streams = (await app.json<Record<string, { consumers: { type: string }[]; state: string }>>('/api/streams')).body;
  assert.equal(streams.demo!.state, 'live');
  assert.equal(streams.demo!.consumers.length, 1);
  assert.equal(streams.demo!.consumers[0]!.type, 'webrtc');

  // Stop: DELETE on the session's Location; within 500 ms ffmpeg has exited and its publish session is gone.
  const ffmpegPid = app.children()[0]!;
  const t1 = Date.now();
  assert.equal(await v.hangUp(app.base), 200);
  await waitFor('ffmpeg gone and publish session closed', async () => {
    const o = await app.objects();
    return app.children().length === 0 && !o.PublishSlot && !o.RtspConnection;
  }, 500);
  const took = Date.now() - t1;
  assert.ok(took <= 500, `stopped in ${took} ms`);
  assert.throws(() => process.kill(ffmpegPid, 0), 'the ffmpeg process no longer exists');
  await backToBaseline('after DELETE');
});

test('lazy: one ffmpeg for one viewer and still one for three', { timeout: 30000 }, async () => {
  assert.equal(app.children().length, 0);
  const viewers = [new Viewer(), new Viewer(), new Viewer()];
  await viewers[0]!.connect(app.base, 'demo');
  await waitFor('media', () => viewers[0]!.video.length > 0, 5000);
  assert.equal(app.children().length, 1);
  await Promise.all(viewers.slice(1).map((v) => v.connect(app.base, 'demo')));
  await waitFor('all three get video', () => viewers.every((v) => v.sawKeyframeWithParams()), 5000);
  assert.equal(app.children().length, 1, 'still one ffmpeg with three viewers');
  // Viewers that vanish without a word (werift sends no DTLS alert) are dropped by the
  // disconnect timeout (2 s in the test config); the source stops within timeout + 1 s.
  const closedBefore = app.logs.filter((l) => l.msg === 'webrtc session closed' && l.reason === 'disconnect timeout').length;
  await Promise.all(viewers.map((v) => v.close()));
  await waitFor('source stopped after the vanished viewers', () => app.children().length === 0, 3000);
  const closed = app.logs.filter((l) => l.msg === 'webrtc session closed' && l.reason === 'disconnect timeout').length;
  assert.equal(closed - closedBefore, 3, 'all three were dropped by the disconnect timeout');
  await backToBaseline('after vanished viewers');
});

test('GET /api and /api/streams answer in go2rtc\'s shape, with credentials masked', { timeout: 10000 }, async () => {
  const info = (await app.json<Record<string, unknown>>('/api')).body;
  assert.equal(info.version, '1.9.14');
  assert.match(String(info.camrelay), /^\d+\.\d+\.\d+/);
  const r = await app.json<Record<string, { producers: { url: string }[]; consumers: unknown[] }>>('/api/streams');
  assert.deepEqual(Object.keys(r.body), ['demo', 'clip', 'usb', 'secret']);
  for (const s of Object.values(r.body)) {
    assert.ok(Array.isArray(s.consumers));
    for (const p of s.producers) assert.equal(typeof p.url, 'string');
  }
  assert.equal(r.body.secret!.producers[0]!.url, 'rtsp://***:***@127.0.0.1:9/live');
  assert.ok(!JSON.stringify(r.body).includes('hunter2'));
});

test('unknown stream: 404 with a JSON error', { timeout: 10000 }, async () => {
  const v = new Viewer();
  const err = await v.connect(app.base, 'nope').then(() => undefined, (e: unknown) => e);
  await v.close();
  assert.ok(err instanceof HttpError);
  assert.equal(err.status, 404);
  assert.deepEqual(JSON.parse(err.body), { error: 'stream not found: nope' });
});

test('a missing file or device: the viewer gets an error naming the path, and nothing retries', { timeout: 20000 }, async () => {
  for (const [name, pathName] of [['clip', '/nonexistent/clip.mp4'], ['usb', '/dev/video99']] as const) {
    const starts = app.logs.filter((l) => l.stream === name && l.msg === 'source starting').length;
    const mark = app.logs.length;
    const v = new Viewer();
    const err = await v.connect(app.base, name).then(() => undefined, (e: unknown) => e);
    await v.close();
    // Logs arrive through a pipe: wait for the stream's return to idle so that all before it is read.
    await app.waitLog((l) => l.stream === name && l.msg === 'stream state' && l.state === 'idle', 3000, mark);
    assert.ok(err instanceof HttpError, `${name}: expected an HTTP error`);
    assert.equal(err.status, 502);
    assert.ok(err.body.includes(pathName), `${name}: error names the path: ${err.body}`);
    assert.match(err.body, /not found/);
    const retried = await app.nextLog((l) => l.stream === name && l.msg === 'source starting', 1500).then(() => true, () => false);
    assert.equal(retried, false, `${name}: no retry after a missing path`);
    assert.equal(app.logs.filter((l) => l.stream === name && l.msg === 'source starting').length, starts + 1);
  }
  await backToBaseline('after missing paths');
});
