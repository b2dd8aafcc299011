// Issue 3 with a real camera (gst-rtsp-server): one camera connection for many readers over our
// RTSP output plus a WebRTC viewer, torn down at once when they leave; and a camera that reboots
// five times while watched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { CamrelayProcess, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { GstCamera } from '../helpers/gst-camera.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';

function ffmpegReader(url: string): { child: ChildProcess; frames: () => number; exited: Promise<number | null> } {
  const child = spawn('/usr/bin/ffmpeg', ['-hide_banner', '-nostats', '-loglevel', 'error', '-progress', 'pipe:1', '-rtsp_transport', 'tcp', '-i', url, '-map', '0:v', '-f', 'null', '-'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let frames = 0;
  child.stdout!.on('data', (d: Buffer) => {
    const m = /frame=(\d+)/g;
    for (let x = m.exec(d.toString()); x; x = m.exec(d.toString())) frames = Number(x[1]);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, frames: () => frames, exited };
}

test('three ffmpeg readers and a WebRTC viewer make one camera connection; all gone → TEARDOWN and socket closed within 500 ms', { timeout: 60000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264' });
  // A long disconnect timeout: this test ends its viewer explicitly, and a loaded machine may
  // leave a live peer silent for more than the usual test's 2 s.
  const app = await CamrelayProcess.start(testConfig({ cam: camera.url() }).replace('disconnect: 2s', 'disconnect: 15s'));
  const readers: ReturnType<typeof ffmpegReader>[] = [];
  const viewer = new Viewer();
  try {
    const url = `rtsp://127.0.0.1:${app.rtspPort}/cam`;
    const probe = await new Promise<string>((resolve, reject) => {
      const p = spawn('/usr/bin/ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`ffprobe exited ${code}`))));
    });
    assert.equal(probe, 'h264');
    await waitFor('camera idle after ffprobe', () => camera.openConnections() === 0, 3000);

    for (let i = 0; i < 3; i++) readers.push(ffmpegReader(url));
    await viewer.connect(app.base, 'cam', 'sdp');
    await waitFor('every reader decodes and the viewer gets a keyframe', () => readers.every((r) => r.frames() >= 10) && viewer.sawKeyframeWithParams(), 15000);
    assert.equal(camera.openConnections(), 1, 'one connection to the camera');
    assert.equal(app.children().length, 0, 'no ffmpeg inside camrelay for a native RTSP camera');
    const consumers = (await app.json<{ consumers: { type: string }[] }>('/api/streams?src=cam')).body.consumers.map((c) => c.type).sort();
    assert.deepEqual(consumers, ['rtsp', 'rtsp', 'rtsp', 'webrtc']);

    // Everyone leaves, the viewer first (DELETE), the readers last: the clock runs from the last one.
    assert.equal(await viewer.hangUp(app.base), 200);
    await waitFor('viewer dropped', async () => (await app.json<{ consumers: unknown[] }>('/api/streams?src=cam')).body.consumers.length === 3, 5000);
    const teardowns = camera.requests('TEARDOWN').length;
    for (const r of readers.slice(0, 2)) r.child.kill('SIGKILL');
    await Promise.all(readers.slice(0, 2).map((r) => r.exited));
    assert.equal(camera.openConnections(), 1, 'still watched by one reader');
    const t0 = Date.now();
    readers[2]!.child.kill('SIGKILL');
    await waitFor('TEARDOWN seen and camera socket closed', () => camera.requests('TEARDOWN').length > teardowns && camera.openConnections() === 0, 500);
    assert.ok(Date.now() - t0 <= 500, `took ${Date.now() - t0} ms`);
  } finally {
    for (const r of readers) r.child.kill('SIGKILL');
    await viewer.close();
    await app.stop();
    await camera.stop();
  }
});

test('the camera restarts 5 times while watched: video resumes each time, retries back off, and stop when the viewer leaves', { timeout: 120000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264' });
  const app = await CamrelayProcess.start(
    `${testConfig({}).replace('disconnect: 2s', 'disconnect: 15s')}  cam:\n    sources: ["${camera.url()}"]\n    backoff: { base: 200ms, max: 1600ms, stable_after: 30s }\n`,
  );
  const viewer = new Viewer();
  try {
    await viewer.connect(app.base, 'cam', 'sdp');
    await waitFor('first picture', () => viewer.sawKeyframeWithParams(), 10000);
    const ssrc = viewer.video[0]!.header.ssrc;
    for (let i = 1; i <= 5; i++) {
      const mark = app.logs.length;
      await camera.kill();
      await app.waitLog((l) => l.stream === 'cam' && l.msg === 'source failed', 8000, mark);
      await camera.restart();
      const before = viewer.video.length;
      await app.waitLog((l) => l.stream === 'cam' && l.msg === 'source live', 15000, mark);
      await waitFor(`video again after restart ${i}`, () => viewer.video.length > before + 20, 10000);
      // The new connection's first packets to the viewer start a keyframe.
      const resumed = viewer.video.slice(before);
      const first = resumed[0]!.payload[0]! & 0x1f;
      assert.ok([7, 8, 5, 24].includes(first) || (first === 28 && (resumed[0]!.payload[1]! & 0x1f) === 5), `restart ${i}: first NAL type ${first}`);
    }
    // One SSRC and no jump backwards in sequence numbers: the viewer saw one continuous stream.
    assert.equal(new Set(viewer.video.map((p) => p.header.ssrc)).size, 1);
    assert.equal(viewer.video[0]!.header.ssrc, ssrc);
    for (let i = 1; i < viewer.video.length; i++) {
      const d = (viewer.video[i]!.header.sequenceNumber - viewer.video[i - 1]!.header.sequenceNumber + 65536) % 65536;
      assert.ok(d >= 1 && d < 100, `sequence step ${d} at packet ${i}`);
    }
    const retries = app.logs.filter((l: LogLine) => l.stream === 'cam' && l.msg === 'retrying source');
    assert.ok(retries.length >= 5, `retries: ${retries.length}`);
    for (const r of retries) assert.ok((r.delay as number) < (r.ceiling as number) && (r.ceiling as number) <= 1600);

    // The camera goes down and the viewer leaves: nothing retries.
    await camera.kill();
    assert.equal(await viewer.hangUp(app.base), 200);
    await waitFor('stream idle', async () => (await app.json<{ state: string }>('/api/streams?src=cam')).body.state === 'idle', 6000);
    const mark = app.logs.length;
    const again = await app.nextLog((l) => l.stream === 'cam' && l.msg === 'source starting', 2500).then(() => true, () => false);
    assert.equal(again, false, `no retry after the viewer left (${app.logs.length - mark} lines since)`);
  } finally {
    await viewer.close();
    await app.stop();
    await camera.stop();
  }
});
