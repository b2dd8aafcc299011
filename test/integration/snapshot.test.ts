// Snapshots and MJPEG from a real demo stream, checked with ffprobe, and nothing left running.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CamrelayProcess, nonZero, testConfig } from '../helpers/camrelay-process.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

let app: CamrelayProcess;

before(async () => {
  app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=640x360&clock=0#video=h264' }));
});
after(async () => {
  assert.equal(await app.stop(), 0);
});

function jpegSize(jpeg: Buffer): { width: number; height: number } {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-jpeg-'));
  try {
    const file = path.join(dir, 'x.jpg');
    writeFileSync(file, jpeg);
    const out = execFileSync('/usr/bin/ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', file], { encoding: 'utf8' });
    const s = (JSON.parse(out) as { streams: { codec_name: string; width: number; height: number }[] }).streams[0]!;
    assert.equal(s.codec_name, 'mjpeg');
    return { width: s.width, height: s.height };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function getJpeg(query: string): Promise<{ jpeg: Buffer; ms: number; status: number }> {
  const t0 = Date.now();
  const chunks: Buffer[] = [];
  const status = await new Promise<number>((resolve, reject) => {
    http.get(`${app.base}/api/frame.jpeg?${query}`, { agent: false }, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
  return { jpeg: Buffer.concat(chunks), ms: Date.now() - t0, status };
}

test('frame.jpeg of an idle stream starts it for one frame and leaves no process behind', { timeout: 30000 }, async () => {
  const base = nonZero(await app.objects());
  const r = await getJpeg('src=demo');
  assert.equal(r.status, 200, r.jpeg.toString().slice(0, 200));
  assert.deepEqual(jpegSize(r.jpeg), { width: 640, height: 360 });
  await waitFor('no ffmpeg left', () => app.children().length === 0, 2000);
  assert.deepEqual(nonZero(await app.objects()), base);
});

test('frame.jpeg of a live stream answers from the held keyframe in under 300 ms, at the asked size', { timeout: 30000 }, async () => {
  const v = new Viewer();
  try {
    await v.connect(app.base, 'demo');
    await waitFor('video', () => v.sawKeyframeWithParams(), 5000);
    const times: number[] = [];
    for (const [query, want] of [['src=demo&width=320&height=180', { width: 320, height: 180 }], ['src=demo&width=160', { width: 160, height: 90 }]] as const) {
      const r = await getJpeg(query);
      assert.equal(r.status, 200);
      assert.deepEqual(jpegSize(r.jpeg), want);
      times.push(r.ms);
    }
    assert.ok(Math.max(...times) < 300, `answered in ${times.join(', ')} ms`);
    assert.equal(app.children().length, 1, 'the snapshot decoder is gone; only the source runs');
  } finally {
    await v.close();
  }
  await waitFor('source stopped after the viewer left', () => app.children().length === 0, 4000);
});

test('bad snapshot requests get a JSON error', { timeout: 10000 }, async () => {
  assert.equal((await request(`${app.base}/api/frame.jpeg?src=nope`)).status, 404);
  const bad = await request(`${app.base}/api/frame.jpeg?src=demo&width=abc`);
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.text).error, /width must be a whole number/);
});

test('stream.mjpeg sends multipart JPEGs; the encoder and the source stop when the client leaves', { timeout: 30000 }, async () => {
  let parts = 0;
  let contentType = '';
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${app.base}/api/stream.mjpeg?src=demo`, { agent: false }, (res) => {
      contentType = String(res.headers['content-type']);
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        parts = text.split('--frame').length - 1;
        if (parts >= 5) {
          req.destroy();
          resolve();
        }
      });
      res.on('error', () => {});
    });
    req.on('error', (e) => (parts >= 5 ? undefined : reject(e)));
    setTimeout(() => reject(new Error(`only ${parts} parts in 10 s`)), 10000).unref();
  });
  assert.equal(contentType, 'multipart/x-mixed-replace; boundary=frame');
  assert.ok(parts >= 5);
  await waitFor('encoder and source gone', () => app.children().length === 0, 2000);
});
