// Issue 15, deliverable 7, for the fMP4 viewers of a real camrelay: an MSE viewer (/api/ws) and a
// stream.mp4 viewer that stop reading are dropped once their send buffer passes its bound, and
// counted in camrelay_consumers_dropped_total{kind="mse"} and {kind="mp4"}; a viewer that reads
// goes on. The camera is a gst-rtsp-server serving a high-rate H.264 clip (noise at a low QP,
// tens of Mbit/s) so that the 24 MiB bound fills in seconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket, type RawData } from 'ws';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { ffmpegOut } from '../helpers/media-clips.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { waitEvent, waitFor } from '../helpers/wait.js';
import { MAX_VIEWER_BUFFER } from '../../src/outputs/fmp4/viewer.js';

const skip = cameraCanRun('h264-file') ? false : 'gst-rtsp-server with appsrc/h264parse not available';
let app: CamrelayProcess;
let camera: GstCamera | undefined;
let dir: string | undefined;
let clipBytesPerSecond = 0;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'fmp4-drop-'));
  const file = path.join(dir, 'noise.h264');
  // Noise coded near-losslessly: a few hundred kB a frame, one keyframe a second.
  const clip = await ffmpegOut(['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25,noise=alls=60:allf=t', '-frames:v', '50',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '8', '-g', '25', '-bf', '0', '-x264-params', 'repeat-headers=1', '-pix_fmt', 'yuv420p', '-f', 'h264', '-']);
  writeFileSync(file, clip);
  clipBytesPerSecond = clip.length / 2;
  camera = await GstCamera.start({ pipeline: 'h264-file', file, fps: 25 });
  app = await CamrelayProcess.start(testConfig({ cam: camera.url() }));
});

after(async () => {
  if (app) assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function consumers(): Promise<string[]> {
  const r = await app.json<Record<string, { consumers: { format_name: string }[] }>>('/api/streams');
  return r.body.cam!.consumers.map((c) => c.format_name).sort();
}

test('an MSE viewer and a stream.mp4 viewer that stop reading are dropped and counted by kind; a reading MSE viewer goes on', { timeout: 120_000, skip }, async () => {
  console.log(`# camera clip: ${((clipBytesPerSecond * 8) / 1e6).toFixed(1)} Mbit/s, bound ${MAX_VIEWER_BUFFER} bytes`);
  const m0 = await scrape(app);
  const before = { mse: metric(m0, 'camrelay_consumers_dropped_total', { kind: 'mse' }), mp4: metric(m0, 'camrelay_consumers_dropped_total', { kind: 'mp4' }) };

  // Reads everything.
  let readBytes = 0;
  const reader = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=cam`);
  reader.on('error', () => undefined);
  reader.on('open', () => reader.send(JSON.stringify({ type: 'mse', value: 'avc1.640029' })));
  reader.on('message', (d: RawData, isBinary: boolean) => {
    if (isBinary) readBytes += (d as Buffer).length;
  });
  // Asks for MSE, then reads nothing more: its socket's buffers fill, then camrelay's.
  const stuckWs = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=cam`);
  stuckWs.on('error', () => undefined);
  await waitEvent(stuckWs, 'open', 5000);
  stuckWs.send(JSON.stringify({ type: 'mse', value: 'avc1.640029' }));
  stuckWs.pause();
  // A raw HTTP client that sends its request and never reads the answer.
  const stuckHttp = net.connect(app.port, '127.0.0.1');
  stuckHttp.on('error', () => undefined);
  stuckHttp.pause();
  stuckHttp.write(`GET /api/stream.mp4?src=cam HTTP/1.1\r\nHost: 127.0.0.1:${app.port}\r\n\r\n`);
  const t0 = performance.now();
  try {
    await waitFor('three viewers listed', async () => (await consumers()).join() === 'mp4,mse/fmp4,mse/fmp4', 15_000);
    const dropped: Record<string, number> = {};
    await waitFor('both stuck viewers dropped', async () => {
      const list = await consumers();
      if (!list.includes('mp4')) dropped.mp4 ??= performance.now() - t0;
      if (list.filter((k) => k === 'mse/fmp4').length < 2) dropped.mse ??= performance.now() - t0;
      return dropped.mp4 !== undefined && dropped.mse !== undefined;
    }, 90_000, 100);
    assert.deepEqual(await consumers(), ['mse/fmp4'], 'the reading viewer stays');
    const m1 = await scrape(app);
    assert.equal(metric(m1, 'camrelay_consumers_dropped_total', { kind: 'mse' }), before.mse + 1, 'the MSE drop is counted as mse');
    assert.equal(metric(m1, 'camrelay_consumers_dropped_total', { kind: 'mp4' }), before.mp4 + 1, 'the stream.mp4 drop is counted as mp4');
    const had = readBytes;
    await waitFor('the reading viewer goes on', () => readBytes > had + 1_000_000, 10_000);
    console.log(`# dropped after ${dropped.mse!.toFixed(0)} ms (mse), ${dropped.mp4!.toFixed(0)} ms (mp4); the reader had ${(readBytes / 1e6).toFixed(1)} MB`);
  } finally {
    stuckWs.terminate();
    stuckHttp.destroy();
    reader.close();
  }
  await waitFor('no viewer left', async () => (await consumers()).length === 0, 5000);
  await waitFor('the camera released', () => camera!.openConnections() === 0, 5000);
});
