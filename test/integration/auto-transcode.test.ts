// stream_defaults.transcode: auto in a real camrelay (issues 15 and 16): an H.264-only WebRTC
// viewer of a gst-rtsp-server H.265 camera gets H.264 from one shared ffmpeg transcode, which
// exits as soon as the last such viewer leaves while an H.265 viewer keeps the camera; an MP4
// reader of a G.711 camera gets AAC from a transcode that lives only while it reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { childrenNamed } from '../helpers/proc-children.js';
import { request } from '../helpers/http.js';
import { HttpError, Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';
import { Signalling } from '../helpers/signalling.js';
import { SNAPSHOT_DECODER_KEEP_MS } from '../../src/outputs/snapshot-pool.js';

const skip = cameraCanRun('h265-pcma') && cameraCanRun('h264-pcma') ? false : 'gst-rtsp-server with x264enc/x265enc/alawenc not available';
let app: CamrelayProcess;
let hevc: GstCamera | undefined;
let g711: GstCamera | undefined;

before(async () => {
  if (skip) return;
  hevc = await GstCamera.start({ pipeline: 'h265-pcma' });
  g711 = await GstCamera.start({ pipeline: 'h264-pcma', mount: '/g711' });
  const never = `  never: { sources: ${JSON.stringify(hevc.url())}, transcode: never }\n`;
  app = await CamrelayProcess.start(testConfig({ hevc: hevc.url(), g711: g711.url() }) + never);
});

after(async () => {
  if (app) assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await hevc?.stop();
  await g711?.stop();
});

const base = () => `http://127.0.0.1:${app.port}`;
const ffmpegs = () => childrenNamed(app.child.pid!, ['ffmpeg']).length;

interface StreamView {
  state: string;
  producers: { url: string; transcode?: string }[];
  consumers: { id: string; format_name: string; transcoded?: string[] }[];
}
const streamView = async (name: string): Promise<StreamView> => (JSON.parse((await request(`${base()}/api/streams`)).text) as Record<string, StreamView>)[name]!;

/** NAL unit types of the H.264 RTP payloads a viewer got (FU-A and STAP-A looked into). */
function h264Types(v: Viewer): Set<number> {
  const out = new Set<number>();
  for (const p of v.video) {
    const t = p.payload[0]! & 0x1f;
    out.add(t === 28 ? p.payload[1]! & 0x1f : t);
  }
  return out;
}

/** Offers to POST /api/webrtc as the given viewer; the answer's X-Camrelay-Transcode header. */
async function connect(v: Viewer, src: string): Promise<string | undefined> {
  const offer = await v.offer();
  const r = await request(`${base()}/api/webrtc?src=${src}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
  if (r.status >= 300) throw new HttpError(r.status, r.text);
  v.location = String(r.headers.location);
  await v.answer(r.text);
  const h = r.headers['x-camrelay-transcode'];
  const header = typeof h === 'string' ? h : undefined;
  assert.equal(noteOf(r.text), header, 'the SDP says what the header says');
  return header;
}

/** The answer's session-level `a=x-camrelay-transcode:` value (which kinds are transcoded). */
function noteOf(sdp: string): string | undefined {
  return /^a=x-camrelay-transcode:(.*)$/m.exec(sdp)?.[1]?.trim();
}

/** Offers over /api/ws as go2rtc's player and Home Assistant do; the answer's transcode note. */
async function connectWs(v: Viewer, src: string): Promise<{ note: string | undefined; sig: Signalling }> {
  const sig = await new Signalling(app.port, src).open();
  sig.send({ type: 'webrtc/offer', value: await v.offer() });
  const answer = await sig.next((m) => m.type === 'webrtc/answer', 20_000);
  await v.answer(String(answer.value));
  let seen = 0;
  const feed = () => {
    for (const m of sig.messages.slice(seen)) if (m.type === 'webrtc/candidate' && typeof m.value === 'string' && m.value) void v.addCandidate(m.value).catch(() => undefined);
    seen = sig.messages.length;
  };
  feed();
  sig.ws.on('message', feed);
  return { note: noteOf(String(answer.value)), sig };
}

test('two H.264-only WebRTC viewers of an H.265 camera share one transcode; it exits within 1 s of both leaving; an H.265 viewer gets the camera untouched', { timeout: 90_000, skip }, async () => {
  const a = new Viewer('audio/PCMA');
  const b = new Viewer('audio/PCMA');
  const h = new Viewer('audio/PCMA', { video: ['H265'] });
  try {
    assert.equal(await connect(a, 'hevc'), 'video', 'the answer says the video is transcoded');
    await waitFor('H.264 keyframe with SPS/PPS for a', () => a.sawKeyframeWithParams(), 20_000);
    // Over the WebSocket too the answer says so (in its SDP: the JSON stays go2rtc's shape).
    const ws = await connectWs(b, 'hevc');
    assert.equal(ws.note, 'video');
    await waitFor('H.264 for b', () => b.sawKeyframeWithParams(), 20_000);
    assert.ok(h264Types(a).has(5), 'IDR slices: H.264, not H.265');
    assert.equal(ffmpegs(), 1, 'one transcode for both');
    assert.ok(a.audio.length > 0, 'the camera\'s G.711 reaches the browser as it is');

    assert.equal(await connect(h, 'hevc'), undefined, 'no transcode for a viewer that takes H.265');
    await waitFor('H.265 RTP for the H.265 viewer', () => h.video.length > 20, 20_000);
    const nalType = (h.video[0]!.payload[0]! >> 1) & 0x3f;
    assert.ok(nalType <= 49, `an H.265 NAL unit header (type ${nalType})`);
    assert.equal(ffmpegs(), 1, 'still one transcode');
    assert.match((await request(`${base()}/metrics`)).text, /camrelay_auto_transcodes\{kind="video"\} 1/);

    const view = await streamView('hevc');
    assert.deepEqual(view.producers.map((p) => p.transcode ?? 'camera'), ['camera', 'auto']);
    assert.equal(view.producers[1]!.url, 'ffmpeg:hevc#video=h264#hardware');
    const webrtc = view.consumers.filter((c) => c.format_name === 'webrtc');
    assert.deepEqual(webrtc.map((c) => (c.transcoded ?? []).join()).sort(), ['', 'video', 'video'], 'the H.264 viewers say they get transcoded video');

    await a.hangUp(base());
    assert.equal(ffmpegs(), 1, 'b still watches');
    // The session outlives its socket (Home Assistant's way): DELETE ends it.
    await ws.sig.close();
    const ids = (await streamView('hevc')).consumers.filter((c) => c.format_name === 'webrtc' && (c.transcoded ?? []).length > 0).map((c) => c.id);
    assert.equal(ids.length, 1, `one transcoded viewer left (b): ${ids.join()}`);
    const left = Date.now();
    assert.equal((await request(`${base()}/api/webrtc?id=${ids[0]}`, { method: 'DELETE' })).status, 200);
    await b.close();
    await waitFor('the transcode exited', () => ffmpegs() === 0, 5_000);
    const gone = Date.now() - left;
    assert.ok(gone < 1000, `transcode gone ${gone} ms after the last H.264 viewer left`);
    const before = h.video.length;
    await waitFor('the H.265 viewer still plays', () => h.video.length > before + 25, 5_000);
    assert.equal((await streamView('hevc')).state, 'live');
  } finally {
    await Promise.allSettled([a.close(), b.close(), h.close()]);
  }
  await waitFor('the camera is released', async () => (await streamView('hevc')).state === 'idle', 5_000);
});

test('transcode: never: an H.264-only viewer of an H.265 camera gets an error naming the codec, and nothing runs', { timeout: 30_000, skip }, async () => {
  const v = new Viewer('audio/PCMA');
  try {
    await assert.rejects(connect(v, 'never'), (e: unknown) => e instanceof HttpError && e.status === 400 && /H265/.test(e.message) && /H264/.test(e.message));
    assert.equal(ffmpegs(), 0);
  } finally {
    await v.close();
  }
  await waitFor('the camera is released', async () => (await streamView('never')).state === 'idle', 5_000);
});

test('stream_defaults.transcode: never applies to every stream (one may say auto again): the H.264-only viewer gets the error naming the codec', { timeout: 60_000, skip }, async () => {
  const other = await CamrelayProcess.start(
    testConfig({ plain: hevc!.url() }, 'stream_defaults: { transcode: never }') + `  again: { sources: ${JSON.stringify(hevc!.url())}, transcode: auto }\n`,
  );
  const v = new Viewer('audio/PCMA');
  const w = new Viewer('audio/PCMA');
  try {
    const offer = await v.offer();
    const r = await request(`http://127.0.0.1:${other.port}/api/webrtc?src=plain`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /H265/);
    assert.match(r.text, /H264/);
    assert.equal(childrenNamed(other.child.pid!, ['ffmpeg']).length, 0, 'no transcode');
    const r2 = await request(`http://127.0.0.1:${other.port}/api/webrtc?src=again`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: await w.offer() });
    assert.equal(r2.status, 201, r2.text);
    assert.equal(r2.headers['x-camrelay-transcode'], 'video', 'the stream that says auto transcodes');
  } finally {
    await Promise.allSettled([v.close(), w.close()]);
    assert.equal(await other.stop(), 0);
  }
});

test('stream.mp4 of a G.711 camera: AAC from a transcode while it is read; ffprobe reads both; nothing runs after', { timeout: 60_000, skip }, async () => {
  const r = await get(`${base()}/api/stream.mp4?src=g711&duration=3`);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^video\/mp4; codecs="avc1\.[0-9A-F]{6},mp4a\.40\.2"$/);
  const dir = mkdtempSync(path.join(tmpdir(), 'auto-transcode-'));
  try {
    const file = path.join(dir, 'g711.mp4');
    writeFileSync(file, r.body);
    const p = spawnSync('/usr/bin/ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(p.status, 0, p.stderr);
    const streams = (JSON.parse(p.stdout) as { streams: { codec_type: string; codec_name: string; nb_read_frames?: string; sample_rate?: string }[] }).streams;
    assert.deepEqual(streams.map((s) => `${s.codec_type}:${s.codec_name}`), ['video:h264', 'audio:aac']);
    // 1024 samples a frame at the camera's 8 kHz: about 8 a second, from the transcode's start.
    assert.equal(streams[1]!.sample_rate, '8000');
    assert.ok(Number(streams[1]!.nb_read_frames) >= 8, `AAC frames: ${streams[1]!.nb_read_frames}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await waitFor('the transcode and the camera are released', async () => ffmpegs() === 0 && (await streamView('g711')).state === 'idle', 5_000);
});

/** A whole GET body (the stream ends by its duration=), with its headers. */
function get(url: string, ms = 30_000): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const req = http.get(url, { agent: false }, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url}: no end within ${ms} ms`)), ms);
    req.on('error', reject);
  });
}

test('snapshot and MJPEG of the H.265 camera: decoded by ffmpeg from the camera\'s H.265, no H.264 transcode for them', { timeout: 60_000, skip }, async () => {
  const jpeg = await get(`${base()}/api/frame.jpeg?src=hevc`);
  assert.equal(jpeg.status, 200);
  assert.equal(jpeg.headers['content-type'], 'image/jpeg');
  assert.equal(jpeg.body.readUInt16BE(0), 0xffd8, 'a JPEG');
  const size = spawnSync('/usr/bin/ffprobe', ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', '-i', 'pipe:0'], { input: jpeg.body, encoding: 'utf8', timeout: 20_000 });
  assert.equal(size.stdout.trim(), '320,180');

  // Three JPEGs of stream.mjpeg; what runs meanwhile; then hang up.
  let seen = 0;
  const req = http.get(`${base()}/api/stream.mjpeg?src=hevc`, { agent: false }, (res) => {
    assert.match(String(res.headers['content-type']), /^multipart\/x-mixed-replace/);
    res.on('data', (c: Buffer) => {
      for (let i = c.indexOf('image/jpeg'); i >= 0; i = c.indexOf('image/jpeg', i + 1)) seen++;
    });
  });
  req.on('error', () => undefined);
  try {
    await waitFor('three MJPEG frames', () => seen >= 3, 20_000);
    const view = await streamView('hevc');
    assert.ok(!view.producers.some((p) => p.transcode === 'auto'), 'no automatic transcode: ffmpeg decodes H.265 itself');
    const o = JSON.parse((await request(`${base()}/api/debug/objects`)).text) as Record<string, number>;
    assert.equal(o['MjpegEncoder'], 1, 'one MJPEG encoder');
    assert.equal(ffmpegs(), 1 + (o['SnapshotDecoder'] ?? 0), 'the MJPEG encoder and the snapshot\'s kept decoder, nothing else');
  } finally {
    req.destroy();
  }
  await waitFor('the encoder and the camera are released', async () => ffmpegs() <= 1 && (await streamView('hevc')).state === 'idle', 5_000);
  await waitFor('the snapshot decoder gone after its quiet period', () => ffmpegs() === 0, SNAPSHOT_DECODER_KEEP_MS + 3000);
});
