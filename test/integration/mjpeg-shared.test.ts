// GET /api/stream.mjpeg from one shared encoder per stream and size, against a real camrelay and
// its demo stream (itself an ffmpeg source): the encoder ffmpegs are counted by their arguments.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { waitFor } from '../helpers/wait.js';

let app: CamrelayProcess;

before(async () => {
  app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=640x360#video=h264' }));
});
after(async () => {
  assert.equal(await app.stop(), 0);
});

/** camrelay's MJPEG encoder children (the demo source is an ffmpeg child too). */
function encoders(): number {
  try {
    const out = execFileSync('ps', ['-o', 'args=', '--ppid', String(app.pid)], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l.includes('ffmpeg') && l.includes('-f mjpeg')).length;
  } catch {
    return 0; // ps exits 1 when there is no child
  }
}

/** An HTTP viewer counting the parts it reads. */
class Reader {
  readonly req: http.ClientRequest;
  head = Buffer.alloc(0);
  parts = 0;
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  #tail = '';
  constructor(query: string) {
    this.req = http.get(`${app.base}/api/stream.mjpeg?${query}`, { agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      res.on('data', (c: Buffer) => {
        if (this.head.length < 256) this.head = Buffer.concat([this.head, c]).subarray(0, 256);
        const text = this.#tail + c.toString('latin1');
        this.parts += text.split('--frame').length - 1 - (this.#tail.split('--frame').length - 1);
        this.#tail = text.slice(-8);
      });
      res.on('error', () => {});
    });
    this.req.on('error', () => {});
  }
  close(): void {
    this.req.destroy();
  }
}

async function demo(): Promise<{ state: string; consumers: { format_name?: string; type?: string }[] }> {
  const r = await app.json<Record<string, { state: string; consumers: { format_name?: string }[] }>>('/api/streams');
  return r.body.demo!;
}

test('three viewers of one stream at one size run one encoder; it exits within 1 s of the last leaving and the stream goes idle', { timeout: 60000 }, async () => {
  const readers = [new Reader('src=demo'), new Reader('src=demo'), new Reader('src=demo')];
  await waitFor('2 parts for every viewer', () => readers.every((r) => r.parts >= 2), 15000);
  for (const r of readers) {
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'multipart/x-mixed-replace; boundary=frame');
    assert.equal(r.headers['cache-control'], 'no-cache');
    // ffmpeg's mpjpeg framing, as when each viewer had its own encoder.
    assert.match(r.head.toString('latin1'), /^--frame\r\nContent-type: image\/jpeg\r\nContent-length: \d+\r\n\r\n\xff\xd8/);
  }
  assert.equal(encoders(), 1, 'one encoder for three viewers');
  assert.equal(app.children().length, 2, 'the demo source and one encoder');
  const s = await demo();
  assert.equal(s.consumers.filter((c) => c.format_name === 'mjpeg').length, 3, 'each viewer is listed');
  const objects = await app.objects();
  assert.equal(objects.MjpegEncoder, 1);
  assert.equal(objects.MjpegViewer, 3);

  // One leaving changes nothing for the others.
  readers[0]!.close();
  const had = readers.slice(1).map((r) => r.parts);
  await waitFor('the others go on', () => readers[1]!.parts >= had[0]! + 3 && readers[2]!.parts >= had[1]! + 3, 10000);
  assert.equal(encoders(), 1);

  for (const r of readers) r.close();
  await waitFor('encoder gone', () => encoders() === 0, 1000);
  await waitFor('stream idle', async () => (await demo()).state === 'idle', 2000);
  await waitFor('no ffmpeg left', () => app.children().length === 0, 2000);
  const after = await app.objects();
  for (const k of ['MjpegEncoder', 'MjpegViewer', 'VideoFrameConsumer', 'ChildProcess']) assert.equal(after[k] ?? 0, 0, k);
});

test('two sizes of one stream run two encoders', { timeout: 60000 }, async () => {
  const a = [new Reader('src=demo&width=320'), new Reader('src=demo&width=320')];
  const b = new Reader('src=demo&width=160&height=90');
  await waitFor('parts for every viewer', () => [...a, b].every((r) => r.parts >= 2), 15000);
  assert.equal(encoders(), 2);
  for (const r of [...a, b]) r.close();
  await waitFor('encoders gone', () => encoders() === 0, 1000);
  await waitFor('no ffmpeg left', () => app.children().length === 0, 2000);
});

test('a viewer that stops reading is dropped and counted; the other viewer of its encoder continues', { timeout: 60000 }, async () => {
  const before = metric(await scrape(app), 'camrelay_consumers_dropped_total', { kind: 'mjpeg' });
  const reader = new Reader('src=demo&width=1280');
  // Never reads: the kernel's buffers fill, then camrelay's.
  const stuck = net.connect(Number(new URL(app.base).port), '127.0.0.1');
  stuck.pause();
  stuck.on('error', () => {});
  stuck.write('GET /api/stream.mjpeg?src=demo&width=1280 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  try {
    await waitFor('two viewers listed', async () => (await demo()).consumers.filter((c) => c.format_name === 'mjpeg').length === 2, 10000);
    await waitFor('the stuck viewer dropped', async () => (await demo()).consumers.filter((c) => c.format_name === 'mjpeg').length === 1, 40000, 200);
    assert.equal(metric(await scrape(app), 'camrelay_consumers_dropped_total', { kind: 'mjpeg' }), before + 1, 'the drop is counted');
    const had = reader.parts;
    await waitFor('the reading viewer goes on', () => reader.parts >= had + 3, 10000);
    assert.equal(encoders(), 1);
  } finally {
    stuck.destroy();
    reader.close();
  }
  await waitFor('encoder gone', () => encoders() === 0, 1000);
});

test('api.max_mjpeg_encoders: a viewer needing one more encoder gets 503 naming the bound and is counted; a watched size can still be joined', { timeout: 60000 }, async () => {
  const cr = await CamrelayProcess.start(
    testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=640x360#video=h264' }).replace('api: { listen: "127.0.0.1:0" }', 'api: { listen: "127.0.0.1:0", max_mjpeg_encoders: 2 }'),
  );
  const readers: http.ClientRequest[] = [];
  const open = (query: string) =>
    new Promise<{ status: number; parts: () => number; body: () => string; retryAfter?: string }>((resolve) => {
      let parts = 0;
      let body = '';
      const req = http.get(`${cr.base}/api/stream.mjpeg?src=demo&${query}`, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          parts += c.toString('latin1').split('--frame').length - 1;
          if (body.length < 400) body += c.toString('latin1');
        });
        res.on('error', () => {});
        resolve({ status: res.statusCode ?? 0, parts: () => parts, body: () => body, retryAfter: res.headers['retry-after'] as string | undefined });
      });
      req.on('error', () => resolve({ status: 0, parts: () => 0, body: () => '' }));
      readers.push(req);
    });
  try {
    const a = await open('width=320');
    const b = await open('width=160');
    assert.deepEqual([a.status, b.status], [200, 200]);
    await waitFor('both encoders send pictures', () => a.parts() > 1 && b.parts() > 1, 20000);
    const c = await open('width=480');
    assert.equal(c.status, 503);
    assert.equal(c.retryAfter, '1');
    await waitFor('the refusal body', () => c.body().includes('}'), 5000);
    assert.match(JSON.parse(c.body()).error, /^stream\.mjpeg: all 2 MJPEG encoders are busy \(api\.max_mjpeg_encoders: 2\)/);
    // Joining a size already encoded needs no new encoder.
    const d = await open('width=320');
    assert.equal(d.status, 200);
    await waitFor('the joiner gets pictures', () => d.parts() > 1, 10000);
    assert.equal(metric(await scrape(cr), 'camrelay_api_refused_total', { reason: 'mjpeg_encoders' }), 1);
  } finally {
    for (const r of readers) r.destroy();
    await waitFor('no ffmpeg left', () => cr.children().length === 0, 5000);
    assert.equal(await cr.stop(), 0);
  }
});
