// Issue 13 item 6, with the shipped webrtc.timeouts.disconnect (no override), on both backends:
// headless Chromium plays through a UDP relay that sees every datagram camrelay gets from it.
// - Chromium killed (SIGKILL: no DTLS close alert, no BYE): the session closes and the source is
//   released at most 4 s after the last datagram camrelay received from it.
// - its UDP stalled both ways for 1.5 s (a Wi-Fi hiccup): the viewer is not dropped and decodes
//   video again afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { ChromiumRelayViewer } from '../helpers/chromium-relay-viewer.js';
import { chromiumSkip } from '../helpers/chromium.js';
import { GstCamera } from '../helpers/gst-camera.js';
import { waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';
const RELEASE_MS = 4000;
const STALL_MS = 1500;
const BACKENDS = ['node-datachannel', 'werift'] as const;

/** testConfig without its short test timeouts: the shipped defaults apply. */
function shippedTimeouts(streams: Record<string, string> = { demo: DEMO }): string {
  const c = testConfig(streams);
  const short = 'timeouts: { connect: 3s, disconnect: 2s }';
  assert.ok(c.includes(short), 'testConfig still sets the short timeouts this file removes');
  return c.replace(short, '');
}

async function start(backend: string, streams?: Record<string, string>): Promise<CamrelayProcess> {
  process.env.CAMRELAY_TEST_WEBRTC_BACKEND = backend;
  const app = await CamrelayProcess.start(shippedTimeouts(streams));
  const l = await app.waitLog((x) => x.msg === 'webrtc backend', 2000);
  assert.equal(l.backend, backend);
  return app;
}

after(() => {
  delete process.env.CAMRELAY_TEST_WEBRTC_BACKEND;
});

const closedLine = (l: LogLine) => l.msg === 'webrtc session closed' && l.stream === 'demo';

for (const backend of BACKENDS) {
  test(`${backend}: Chromium killed with SIGKILL → session closed and source released ≤ ${RELEASE_MS} ms after its last datagram`, { timeout: 60000, skip: chromiumSkip }, async (t) => {
    const app = await start(backend);
    let v: ChromiumRelayViewer | undefined;
    try {
      v = await ChromiumRelayViewer.play(app.base, 'demo');
      const viewer = v;
      await waitFor('video decoded', async () => (await viewer.videoWidth()) > 0, 20000, 100);
      const mark = app.logs.length;
      v.browser.kill();
      const closed = await app.waitLog(closedLine, 10000, mark);
      const stopping = await app.waitLog((l) => l.msg === 'stream state' && l.stream === 'demo' && l.state === 'stopping', 3000, mark);
      const last = v.relay.last()!;
      const closedAfter = Number(closed.time) - last;
      const releasedAfter = Number(stopping.time) - last;
      t.diagnostic(`session closed ${Math.round(closedAfter)} ms, source released ${Math.round(releasedAfter)} ms after the last datagram`);
      assert.equal(closed.reason, 'disconnect timeout');
      assert.ok(closedAfter <= RELEASE_MS, `session closed ${Math.round(closedAfter)} ms after the last datagram`);
      assert.ok(releasedAfter <= RELEASE_MS, `source released ${Math.round(releasedAfter)} ms after the last datagram`);
      await waitFor('ffmpeg gone', () => app.children().length === 0, 3000);
    } finally {
      await v?.close();
      assert.equal(await app.stop(), 0);
    }
  });

  test(`${backend}: a viewer whose UDP stalls ${STALL_MS} ms both ways is not dropped and decodes video again`, { timeout: 60000, skip: chromiumSkip }, async () => {
    const app = await start(backend);
    let v: ChromiumRelayViewer | undefined;
    try {
      v = await ChromiumRelayViewer.play(app.base, 'demo');
      const viewer = v;
      await waitFor('video decoded', async () => (await viewer.videoWidth()) > 0, 20000, 100);
      // Steady state first: Chromium's report timers run.
      const warm = await v.framesDecoded();
      await waitFor('more frames', async () => (await viewer.framesDecoded()) > warm + 25, 5000, 100);
      const mark = app.logs.length;
      const t0 = performance.timeOrigin + performance.now();
      v.relay.stall(STALL_MS);
      await waitFor('the stall is over', () => performance.timeOrigin + performance.now() > t0 + STALL_MS, STALL_MS + 1000);
      const after = await v.framesDecoded();
      await waitFor('frames decoded after the stall', async () => (await viewer.framesDecoded()) > after + 25, 8000, 100);
      // Well past the disconnect timeout counted from the stall's start.
      await waitFor('4 s after the stall began', () => performance.timeOrigin + performance.now() > t0 + RELEASE_MS + 500, 6000);
      assert.equal(app.logs.slice(mark).filter(closedLine).length, 0, `dropped: ${JSON.stringify(app.logs.slice(mark).filter(closedLine))}`);
      const gap = v.relay.largestGap(undefined, t0 - 5000, performance.timeOrigin + performance.now());
      assert.ok(gap >= STALL_MS, `the relay did stall (largest gap ${Math.round(gap)} ms)`);
    } finally {
      await v?.close();
      assert.equal(await app.stop(), 0);
    }
  });
}

/** Camera down this long: well past the disconnect timeout, while camrelay sends the viewer nothing. */
const CAMERA_DOWN_MS = 6000;

for (const backend of BACKENDS) {
  test(`${backend}: a viewer stays attached while the camera is down for ${CAMERA_DOWN_MS} ms (nothing sent, so no reports back), and plays again after`, { timeout: 90000, skip: chromiumSkip }, async () => {
    const camera = await GstCamera.start({ pipeline: 'h264' });
    const app = await start(backend, { cam: camera.url() });
    let v: ChromiumRelayViewer | undefined;
    try {
      v = await ChromiumRelayViewer.play(app.base, 'cam');
      const viewer = v;
      await waitFor('video decoded', async () => (await viewer.videoWidth()) > 0, 20000, 100);
      const mark = app.logs.length;
      await camera.kill();
      const t0 = Date.now();
      await app.waitLog((l) => l.msg === 'source failed' && l.stream === 'cam', 10000, mark);
      await waitFor('the camera stays down', () => Date.now() > t0 + CAMERA_DOWN_MS, CAMERA_DOWN_MS + 1000, 100);
      const before = await v.framesDecoded();
      await camera.restart();
      await waitFor('frames again after the camera came back', async () => (await viewer.framesDecoded()) > before + 25, 40000, 200);
      const closed = app.logs.slice(mark).filter((l) => l.msg === 'webrtc session closed' && l.stream === 'cam');
      assert.deepEqual(closed, [], 'the viewer was kept across the reconnect');
    } finally {
      await v?.close();
      assert.equal(await app.stop(), 0);
      await camera.stop();
    }
  });
}
