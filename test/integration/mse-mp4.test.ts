// Issue 15: fMP4 out of a real camrelay: GET /api/stream.mp4 and /api/frame.mp4 read by ffprobe,
// MSE over /api/ws as go2rtc's player takes it, and one camera connection and one muxer for ten
// MSE viewers and a WebRTC viewer. Sources: the demo (ffmpeg test pattern) and a gst-rtsp-server
// H.264+AAC camera.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket, type RawData } from 'ws';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { Go2rtcPlayer } from '../helpers/go2rtc-player.js';
import { request } from '../helpers/http.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitEvent, waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';
const skip = cameraCanRun('h264-aac') ? false : 'gst-rtsp-server with x264enc/voaacenc not available';
let app: CamrelayProcess;
let camera: GstCamera | undefined;
const skipHevc = cameraCanRun('h265-aac') ? false : 'gst-rtsp-server with x265enc/voaacenc not available';
let hevc: GstCamera | undefined;

before(async () => {
  if (!skip) camera = await GstCamera.start({ pipeline: 'h264-aac' });
  if (!skipHevc) hevc = await GstCamera.start({ pipeline: 'h265-aac' });
  // cam plays as it is (transcode: never): WebRTC has no audio of an AAC camera then, which is
  // what makes go2rtc's player keep MSE below; auto-transcode.test.ts covers the other way.
  const cam = camera ? `  cam: { sources: ${JSON.stringify(camera.url())}, transcode: never }\n` : '';
  app = await CamrelayProcess.start(testConfig({ demo: DEMO, ...(hevc && { hevc: hevc.url() }) }) + cam);
});

after(async () => {
  assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
  await hevc?.stop();
});

test('stream.mp4 of a gst H.265+AAC camera: ffprobe reads hevc with tag hvc1 and its AAC, every frame decodes', { timeout: 60_000, skip: skipHevc }, async () => {
  const r = await get(`http://127.0.0.1:${app.port}/api/stream.mp4?src=hevc&duration=2`, Infinity, 20_000);
  assert.match(String(r.headers['content-type']), /^video\/mp4; codecs="hvc1\.1\.6\.L153\.B0,mp4a\.40\.2"$/);
  const p = ffprobe(r.body);
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}:${s.codec_tag_string}`), ['video:hevc:hvc1', 'audio:aac:mp4a']);
  const v = p.streams.find((s) => s.codec_type === 'video')!;
  const a = p.streams.find((s) => s.codec_type === 'audio')!;
  assert.ok(Number(v.nb_read_frames) >= 20, `frames: ${v.nb_read_frames}`);
  // The camera's AAC (voaacenc, 1024 samples a frame): 2 s is far more than 20 frames.
  assert.ok(Number(a.nb_read_frames) >= 20, `audio frames: ${a.nb_read_frames}`);
  const decode = spawnSync('/usr/bin/ffmpeg', ['-v', 'error', '-i', 'pipe:0', '-f', 'null', '-'], { input: r.body, timeout: 30_000, encoding: 'utf8' });
  assert.equal(decode.status, 0, decode.stderr);
  assert.equal(decode.stderr.trim(), '', 'decodes without errors');
});

/** The body of a GET, up to `bytes` or the end, with its headers. */
function get(url: string, bytes: number, ms = 15_000): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const req = http.get(url, { agent: false }, (res) => {
      const done = () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= bytes) {
          req.destroy();
          done();
        }
      });
      res.on('end', done);
      res.on('error', () => undefined);
    });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url}: not ${bytes} bytes within ${ms} ms (got ${n})`)), ms);
    req.on('error', (e) => (n >= bytes ? undefined : reject(e)));
  });
}

interface Probed {
  streams: { codec_type: string; codec_name: string; codec_tag_string: string; width?: number; nb_read_frames?: string }[];
}
function ffprobe(bytes: Buffer): Probed {
  const dir = mkdtempSync(path.join(tmpdir(), 'mp4-it-'));
  try {
    const file = path.join(dir, 'in.mp4');
    writeFileSync(file, bytes);
    const r = spawnSync('/usr/bin/ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Probed;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const objects = async (): Promise<Record<string, number>> => JSON.parse((await request(`http://127.0.0.1:${app.port}/api/debug/objects`)).text) as Record<string, number>;
const streamState = async (name: string): Promise<{ state: string; consumers: { format_name: string }[] }> =>
  (JSON.parse((await request(`http://127.0.0.1:${app.port}/api/streams`)).text) as Record<string, { state: string; consumers: { format_name: string }[] }>)[name]!;

test('stream.mp4 of the demo for duration=2: ffprobe reads H.264 frames and AAC made of its Opus; mp4=all takes the Opus itself', { timeout: 60_000 }, async () => {
  const plain = await get(`http://127.0.0.1:${app.port}/api/stream.mp4?src=demo&duration=2`, Infinity, 20_000);
  assert.equal(plain.status, 200);
  // go2rtc's default MP4 takes AAC, not Opus: the demo's audio comes through the automatic transcode.
  assert.match(String(plain.headers['content-type']), /^video\/mp4; codecs="avc1\.[0-9A-F]{6},mp4a\.40\.2"$/);
  const p = ffprobe(plain.body);
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}:${s.codec_tag_string}`), ['video:h264:avc1', 'audio:aac:mp4a']);
  assert.ok(Number(p.streams[0]!.nb_read_frames) >= 20, `frames: ${p.streams[0]!.nb_read_frames}`);
  const all = await get(`http://127.0.0.1:${app.port}/api/stream.mp4?src=demo&mp4=all&duration=2`, Infinity, 20_000);
  assert.match(String(all.headers['content-type']), /codecs="avc1\.[0-9A-F]{6},opus"/);
  const q = ffprobe(all.body);
  assert.deepEqual(q.streams.map((s) => `${s.codec_type}:${s.codec_name}`), ['video:h264', 'audio:opus']);
  assert.ok(Number(q.streams[1]!.nb_read_frames) > 20);
  await waitFor('the demo stopped once its last viewer left', async () => (await streamState('demo')).state === 'idle', 5000);
});

test('frame.mp4: one keyframe as a short MP4 with Content-Length; Chrome\'s first request without Range gets nothing', { timeout: 30_000 }, async () => {
  const r = await get(`http://127.0.0.1:${app.port}/api/frame.mp4?src=demo`, Infinity);
  assert.equal(r.status, 200);
  assert.equal(Number(r.headers['content-length']), r.body.length);
  const p = ffprobe(r.body);
  assert.equal(p.streams.length, 1);
  assert.equal(p.streams[0]!.codec_name, 'h264');
  assert.equal(Number(p.streams[0]!.nb_read_frames), 1);
  const chrome = await request(`http://127.0.0.1:${app.port}/api/frame.mp4?src=demo`, { headers: { 'user-agent': 'Mozilla/5.0 Chrome/120.0 Safari/537.36' } });
  assert.equal(chrome.status, 200);
  assert.equal(chrome.text, '');
  const none = await request(`http://127.0.0.1:${app.port}/api/stream.mp4?src=nope`);
  assert.equal(none.status, 404);
});

test('stream.mp4 of a gst H.264+AAC camera: ffprobe and ffmpeg read video and audio', { timeout: 60_000, skip }, async () => {
  const r = await get(`http://127.0.0.1:${app.port}/api/stream.mp4?src=cam&duration=2`, Infinity, 20_000);
  assert.match(String(r.headers['content-type']), /^video\/mp4; codecs="avc1\.[0-9A-F]{6},mp4a\.40\.2"$/);
  const p = ffprobe(r.body);
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}:${s.codec_tag_string}`), ['video:h264:avc1', 'audio:aac:mp4a']);
  assert.ok(Number(p.streams[0]!.nb_read_frames) >= 20 && Number(p.streams[1]!.nb_read_frames) >= 20, JSON.stringify(p.streams.map((s) => s.nb_read_frames)));
  const decode = spawnSync('/usr/bin/ffmpeg', ['-v', 'error', '-i', 'pipe:0', '-f', 'null', '-'], { input: r.body, timeout: 30_000, encoding: 'utf8' });
  assert.equal(decode.status, 0, decode.stderr);
  assert.equal(decode.stderr.trim(), '', 'decodes without errors');
});

test('stream.mp4 without duration= of an idle camera: a client that reads a while and hangs up mid-stream leaves no consumer, the camera is released within 1 s', { timeout: 60_000, skip }, async () => {
  const cam = camera!;
  await waitFor('the camera idle', () => cam.openConnections() === 0, 8000);
  assert.equal((await streamState('cam')).state, 'idle');
  let bytes = 0;
  let ended = false;
  const req = http.get(`http://127.0.0.1:${app.port}/api/stream.mp4?src=cam`, { agent: false }, (res) => {
    assert.equal(res.statusCode, 200);
    res.on('data', (c: Buffer) => (bytes += c.length));
    res.on('end', () => (ended = true));
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  try {
    // Reads a while: the body keeps coming (no duration: it has no end of its own).
    await waitFor('200 KB of the stream', () => bytes > 200_000, 20_000);
    const had = bytes;
    await waitFor('more bytes keep coming', () => bytes > had + 50_000, 10_000);
    assert.equal(ended, false, 'an open-ended stream.mp4 does not end by itself');
    assert.deepEqual((await streamState('cam')).consumers.map((x) => x.format_name), ['mp4']);
    assert.equal(cam.openConnections(), 1);
  } finally {
    req.destroy(); // hangs up mid-stream
  }
  const t0 = performance.now();
  await waitFor('no consumer of cam left', async () => (await streamState('cam')).consumers.length === 0, 1000, 10);
  await waitFor('the stream idle', async () => (await streamState('cam')).state === 'idle', 1000, 10);
  await waitFor('the camera released', () => cam.openConnections() === 0, 1000, 10);
  const ms = performance.now() - t0;
  assert.ok(ms <= 1000, `released ${ms.toFixed(0)} ms after the hang-up`);
  console.log(`# stream.mp4 hang-up after ${bytes} bytes: consumer gone, stream idle and camera released in ${ms.toFixed(0)} ms`);
  assert.equal((await objects())['Fmp4Viewer'] ?? 0, 0);
});

/** A bare MSE client: the answer, then the binary messages. */
class MseClient {
  readonly ws: WebSocket;
  texts: { type: string; value?: string }[] = [];
  binary: Buffer[] = [];
  readonly startedAt = performance.now();
  /** ms from the socket's creation to its first fragment (the message after the init). */
  firstFragmentMs: number | undefined;
  constructor(src: string, codecs: string) {
    this.ws = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=${encodeURIComponent(src)}`);
    this.ws.on('error', () => undefined);
    this.ws.on('open', () => this.ws.send(JSON.stringify({ type: 'mse', value: codecs })));
    this.ws.on('message', (d: RawData, isBinary: boolean) => {
      const b = Buffer.isBuffer(d) ? d : Buffer.concat(d as Buffer[]);
      if (isBinary) {
        this.binary.push(b);
        if (this.binary.length === 2) this.firstFragmentMs = performance.now() - this.startedAt;
      }
      else this.texts.push(JSON.parse(b.toString()) as { type: string; value?: string });
    });
  }
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await waitEvent(this.ws, 'close', 3000);
  }
}

test('MSE over /api/ws: go2rtc\'s answer, then the init segment alone, then moof+mdat messages that ffprobe reads; unknown stream and no match in go2rtc\'s words', { timeout: 60_000 }, async () => {
  const c = new MseClient('demo', 'avc1.640029,mp4a.40.2,opus');
  try {
    await waitFor('30 fragments', () => c.binary.length > 30, 15_000);
    assert.deepEqual(c.texts.map((t) => t.type), ['mse']);
    assert.match(String(c.texts[0]!.value), /^video\/mp4; codecs="avc1\.[0-9A-F]{6},opus"$/);
    assert.equal(c.binary[0]!.subarray(4, 8).toString(), 'ftyp', 'the first binary message is the init segment');
    assert.ok(c.binary[0]!.includes('moov') && !c.binary[0]!.includes('moof'), 'init alone');
    for (const m of c.binary.slice(1)) assert.equal(m.subarray(4, 8).toString(), 'moof', 'each later message starts a fragment');
    const p = ffprobe(Buffer.concat(c.binary));
    assert.deepEqual(p.streams.map((s) => s.codec_name), ['h264', 'opus']);
    const consumers = (await streamState('demo')).consumers.map((x) => x.format_name);
    assert.deepEqual(consumers, ['mse/fmp4'], '/api/streams lists the viewer, not the muxer');
  } finally {
    await c.close();
  }
  const none = new MseClient('nope', '');
  try {
    await waitFor('an error', () => none.texts.length > 0);
    assert.deepEqual(none.texts[0], { type: 'error', value: 'mse: stream not found' });
  } finally {
    await none.close();
  }
  // Nothing makes H.265 of H.264: a client that takes only H.265 gets go2rtc's refusal.
  const mismatch = new MseClient('demo', 'hvc1.1.6.L153.B0');
  try {
    await waitFor('an error', () => mismatch.texts.length > 0, 15_000);
    assert.match(String(mismatch.texts[0]!.value), /^mse: streams: codecs not matched: video:H264.* => video:H265$/);
    assert.equal(mismatch.ws.readyState, WebSocket.OPEN, 'the socket stays, as go2rtc\'s');
  } finally {
    await mismatch.close();
  }
});

test('ten MSE viewers and one WebRTC viewer of one camera: one camera connection, one muxer; all gone, the camera is released', { timeout: 90_000, skip }, async () => {
  const cam = camera!;
  const before = cam.connections();
  const clients = Array.from({ length: 10 }, () => new MseClient('cam', 'avc1.640029,mp4a.40.2'));
  const viewer = new Viewer();
  try {
    await viewer.connect(`http://127.0.0.1:${app.port}`, 'cam', 'sdp');
    await waitFor('every MSE viewer has fragments', () => clients.every((c) => c.binary.length > 10), 20_000);
    await waitFor('WebRTC video', () => viewer.video.length > 10, 15_000);
    assert.equal(cam.connections() - before, 1, 'one camera connection');
    const o = await objects();
    assert.equal(o['Fmp4Muxer'], 1, 'one muxer');
    assert.equal(o['Fmp4Viewer'], 10);
    const kinds = (await streamState('cam')).consumers.map((x) => x.format_name).sort();
    assert.deepEqual(kinds, [...Array(10).fill('mse/fmp4'), 'webrtc'].sort());
    const metrics = (await request(`http://127.0.0.1:${app.port}/metrics`)).text;
    assert.match(metrics, /camrelay_consumers\{kind="mse"\} 10/);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await viewer.close();
  }
  await waitFor('no muxer left', async () => (await objects())['Fmp4Muxer'] === 0, 5000);
  await waitFor('the camera released', () => cam.openConnections() === 0, 8000);
});

test('go2rtc\'s player (default modes) on the AAC camera: MSE wins over WebRTC without audio, plays; closing it stops the source within 1 s', { timeout: 60_000, skip }, async () => {
  const cam = camera!;
  await waitFor('the camera idle', () => cam.openConnections() === 0, 8000);
  const p = await new Go2rtcPlayer(app.port, 'cam').start();
  try {
    await waitFor('MSE answered', () => p.mseType, 15_000);
    assert.match(p.mseType!, /mp4a\.40\.2/);
    await waitFor('MSE kept, the peer closed', () => p.pcClosedForMse, 15_000);
    const n = p.mseData.length;
    await waitFor('fragments keep coming', () => p.mseData.length > n + 20, 10_000);
    assert.equal(p.ws.readyState, WebSocket.OPEN);
    // The peer the player closed ends its session by camrelay's own rules (webrtc.timeouts): once
    // only the MSE viewer is left, closing the player is what releases the camera.
    await waitFor('only the MSE viewer left', async () => (await streamState('cam')).consumers.map((x) => x.format_name).join() === 'mse/fmp4', 8000);
  } finally {
    await p.close();
  }
  const t0 = Date.now();
  await waitFor('the camera released', () => cam.openConnections() === 0, 1000, 10);
  assert.ok(Date.now() - t0 <= 1000);
});

test('100 MSE viewers join and leave a watched stream (10 at a time): each starts at once at the cached keyframe; back to baseline after', { timeout: 90_000 }, async () => {
  const holder = new MseClient('demo', 'avc1.640029');
  try {
    await waitFor('the holder plays', () => holder.binary.length > 30, 15_000);
    const waits: number[] = [];
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 10 }, () => new MseClient('demo', 'avc1.640029'));
      // The init and the GOP so far come at once, without waiting for the next keyframe.
      await waitFor('every joiner has its init and a fragment', () => batch.every((c) => c.binary.length >= 2), 3000, 10);
      for (const c of batch) assert.equal(c.binary[0]!.subarray(4, 8).toString(), 'ftyp');
      waits.push(...batch.map((c) => c.firstFragmentMs!));
      await Promise.all(batch.map((c) => c.close()));
    }
    waits.sort((a, b) => a - b);
    // The demo's GOP is longer than this: a joiner that waited for a keyframe would show it.
    const p95 = waits[Math.floor(waits.length * 0.95)]!;
    assert.ok(p95 < 300, `first fragment p95 ${p95.toFixed(0)} ms (median ${waits[50]!.toFixed(0)} ms)`);
    await waitFor('only the holder left', async () => (await objects())['Fmp4Viewer'] === 1, 5000);
    assert.equal((await objects())['Fmp4Muxer'], 1);
  } finally {
    await holder.close();
  }
  await waitFor('back to baseline', async () => {
    const o = await objects();
    return (o['Fmp4Viewer'] ?? 0) === 0 && (o['Fmp4Muxer'] ?? 0) === 0 && (o['WsConnection'] ?? 0) === 0 && (await streamState('demo')).state === 'idle';
  }, 5000);
});
