// go2rtc's HLS over /api/ws (internal/hls/ws.go, www/video-rtc.js's onhls): the client sends
// {"type":"hls","value":"<codecs>"}, camrelay answers {"type":"hls","value":"<master playlist>"}
// of a new session in the same table as GET /api/stream.m3u8. The player resolves it as
// video-rtc.js does (`hls/` → `http://<host>/api/hls/`); ffprobe and plain GETs read it; the
// session ends (and releases a gst-rtsp-server H.264+AAC camera) once nothing fetches it, and
// not because the socket closed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket, type RawData } from 'ws';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { request } from '../helpers/http.js';
import { waitEvent, waitFor } from '../helpers/wait.js';
import { HLS_SESSION_TIMEOUT_MS } from '../../src/outputs/hls/session.js';
import { runTool as run } from '../helpers/run-tool.js';

const skip = cameraCanRun('h264-aac') ? false : 'gst-rtsp-server with x264enc/voaacenc not available';
let app: CamrelayProcess;
let camera: GstCamera | undefined;
const base = () => `http://127.0.0.1:${app.port}`;

before(async () => {
  if (!skip) camera = await GstCamera.start({ pipeline: 'h264-aac' });
  app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x240#video=h264', ...(camera && { cam: camera.url() }) }));
});

after(async () => {
  assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
});

/** A socket that asks for HLS as video-rtc.js does and keeps the text messages it gets. */
class HlsWsClient {
  readonly ws: WebSocket;
  texts: { type: string; value?: string }[] = [];
  constructor(src: string, codecs: string) {
    this.ws = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=${encodeURIComponent(src)}`);
    this.ws.on('error', () => undefined);
    this.ws.on('open', () => this.ws.send(JSON.stringify({ type: 'hls', value: codecs })));
    this.ws.on('message', (d: RawData, isBinary: boolean) => {
      if (!isBinary) this.texts.push(JSON.parse(String(d)) as { type: string; value?: string });
    });
  }
  /** video-rtc.js: `'http' + wsURL.substring(2, wsURL.indexOf('/ws')) + '/hls/'` in place of `hls/`. */
  resolved(master: string): string {
    const wsURL = this.ws.url;
    return master.replace('hls/', 'http' + wsURL.substring(2, wsURL.indexOf('/ws')) + '/hls/');
  }
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await waitEvent(this.ws, 'close', 3000);
  }
}

function getBytes(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in time`)));
    req.on('error', reject);
  });
}

const objects = async (): Promise<Record<string, number>> => JSON.parse((await request(`${base()}/api/debug/objects`)).text) as Record<string, number>;
const streamState = async (name: string): Promise<{ state: string; consumers: { format_name: string }[] }> =>
  (JSON.parse((await request(`${base()}/api/streams`)).text) as Record<string, { state: string; consumers: { format_name: string }[] }>)[name]!;

test('{"type":"hls"} on /api/ws: go2rtc\'s master playlist of a new session; resolved as video-rtc.js does, ffprobe reads it and segments come; the socket\'s close leaves it; unfetched it ends and the camera is released', { timeout: 90_000, skip }, async () => {
  const cam = camera!;
  await waitFor('the camera idle', () => cam.openConnections() === 0, 8000);
  const c = new HlsWsClient('cam', 'avc1.640029,avc1.64002A,mp4a.40.2,mp4a.40.5,opus,flac');
  const answer = await waitFor('the hls answer', () => c.texts[0], 20_000);
  assert.equal(answer.type, 'hls', JSON.stringify(answer));
  const master = String(answer.value);
  // go2rtc's Main(): the master playlist, its one URI relative to /api/.
  const m = /^#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="avc1\.[0-9A-F]{6},mp4a\.40\.2"\nhls\/playlist\.m3u8\?id=([0-9A-Za-z]{16})\n?$/.exec(master);
  assert.ok(m, master);
  const id = m[1]!;
  const playlistUrl = c.resolved(master).split('\n')[2]!;
  assert.equal(playlistUrl, `${base()}/api/hls/playlist.m3u8?id=${id}`);
  assert.deepEqual((await streamState('cam')).consumers.map((x) => x.format_name), ['hls/fmp4']);

  const probe = await run('/usr/bin/ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', playlistUrl], 30_000);
  assert.equal(probe.code, 0, probe.stderr);
  const streams = (JSON.parse(probe.stdout) as { streams: { codec_type: string; codec_name: string }[] }).streams;
  assert.deepEqual(streams.map((s) => `${s.codec_type}:${s.codec_name}`), ['video:h264', 'audio:aac']);

  // The socket closes: the session is the HLS table's now (go2rtc's rule), not the socket's.
  await c.close();
  const playlist = await request(playlistUrl);
  assert.equal(playlist.status, 200);
  assert.match(playlist.headers['content-type'] ?? '', /mpegurl/);
  const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist.text)![1]!;
  const segs = [...playlist.text.matchAll(/^(segment\.m4s\?id=\w+&n=\d+)$/gm)].map((x) => x[1]!);
  assert.ok(segs.length >= 1, playlist.text);
  const dir = `${base()}/api/hls/`;
  const i = await getBytes(dir + init);
  assert.equal(i.status, 200);
  assert.equal(i.body.subarray(4, 8).toString(), 'ftyp');
  let last = 0;
  for (const s of segs.slice(-2)) {
    const r = await getBytes(dir + s);
    assert.equal(r.status, 200, s);
    assert.equal(r.body.subarray(4, 8).toString(), 'moof');
    last = performance.now();
  }
  const kept = await streamState('cam');
  assert.equal(kept.state, 'live');
  assert.deepEqual(kept.consumers.map((x) => x.format_name), ['hls/fmp4']);

  // Nothing fetches it any more: it ends after HLS_SESSION_TIMEOUT_MS, and the camera with it.
  await waitFor('the camera released', () => cam.openConnections() === 0, HLS_SESSION_TIMEOUT_MS + 3000, 20);
  const ms = performance.now() - last;
  assert.ok(ms >= HLS_SESSION_TIMEOUT_MS - 100 && ms <= HLS_SESSION_TIMEOUT_MS + 1000, `camera released ${ms.toFixed(0)} ms after the last fetch`);
  console.log(`# hls over ws: camera released ${ms.toFixed(0)} ms after the last segment fetch (session timeout ${HLS_SESSION_TIMEOUT_MS} ms)`);
  assert.equal((await streamState('cam')).state, 'idle');
  assert.equal((await request(playlistUrl)).status, 404, 'the ended session is gone');
  assert.equal((await objects())['HlsSession'] ?? 0, 0);
});

test('{"type":"hls"}: codecs filtered by what the client sent; unknown stream and no common codec in go2rtc\'s words; a socket that closes before the answer takes its session', { timeout: 60_000, skip }, async () => {
  const cam = camera!;
  // Video only: the client listed no audio codec.
  const v = new HlsWsClient('cam', 'avc1.640029');
  try {
    const a = await waitFor('the hls answer', () => v.texts[0], 20_000);
    assert.equal(a.type, 'hls', JSON.stringify(a));
    assert.match(String(a.value), /CODECS="avc1\.[0-9A-F]{6}"\n/);
  } finally {
    await v.close();
  }
  const none = new HlsWsClient('nope', '');
  try {
    assert.deepEqual(await waitFor('an error', () => none.texts[0]), { type: 'error', value: 'hls: stream not found' });
  } finally {
    await none.close();
  }
  const mismatch = new HlsWsClient('cam', 'hvc1.1.6.L153.B0');
  try {
    const e = await waitFor('an error', () => mismatch.texts[0], 20_000);
    assert.equal(e.type, 'error');
    assert.match(String(e.value), /^hls: streams: codecs not matched: video:H264.* => video:H265$/);
  } finally {
    await mismatch.close();
  }
  // The video-only session above was answered: it lives by the 5 s rule, then the camera goes.
  await waitFor('the camera idle', () => cam.openConnections() === 0, HLS_SESSION_TIMEOUT_MS + 5000);
  // The demo (an ffmpeg child that must start and publish first) answers late enough to close before.
  assert.equal((await streamState('demo')).state, 'idle');
  const early = new HlsWsClient('demo', 'avc1.640029');
  await waitEvent(early.ws, 'open', 3000);
  await waitFor('the session opened', async () => (await objects())['HlsSession'] === 1, 3000, 5);
  await early.close();
  assert.deepEqual(early.texts, [], 'closed before the answer');
  const t0 = performance.now();
  await waitFor('its session closed', async () => ((await objects())['HlsSession'] ?? 0) === 0, 1000, 10);
  await waitFor('the demo idle', async () => (await streamState('demo')).state === 'idle', 2000, 10);
  assert.equal(app.children().length, 0, 'no ffmpeg left');
  console.log(`# hls over ws: socket closed before the answer, session and source gone in ${(performance.now() - t0).toFixed(0)} ms`);
});

test('{"type":"hls"} is bounded by the HLS session table: the 17th session of a stream is refused in go2rtc\'s form and counted; all end unfetched', { timeout: 60_000 }, async () => {
  const refusedBefore = Number(/camrelay_api_refused_total\{reason="hls_sessions"\} (\d+)/.exec((await request(`${base()}/metrics`)).text)?.[1] ?? 0);
  const clients = Array.from({ length: 16 }, () => new HlsWsClient('demo', 'avc1.640029'));
  try {
    await waitFor('16 answers', () => clients.every((c) => c.texts.length > 0), 20_000);
    assert.deepEqual([...new Set(clients.map((c) => c.texts[0]!.type))], ['hls']);
    assert.equal(new Set(clients.map((c) => /id=(\w+)/.exec(String(c.texts[0]!.value))![1])).size, 16, 'one session each');
    const over = new HlsWsClient('demo', 'avc1.640029');
    try {
      assert.deepEqual(await waitFor('a refusal', () => over.texts[0], 5000), { type: 'error', value: 'hls: too many HLS sessions (16 per stream, 64 in all)' });
      assert.equal(over.ws.readyState, WebSocket.OPEN);
    } finally {
      await over.close();
    }
    const refused = Number(/camrelay_api_refused_total\{reason="hls_sessions"\} (\d+)/.exec((await request(`${base()}/metrics`)).text)?.[1] ?? 0);
    assert.equal(refused, refusedBefore + 1);
    // GET /api/stream.m3u8 shares the bound.
    assert.equal((await request(`${base()}/api/stream.m3u8?src=demo`)).status, 503);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  await waitFor('every session ended unfetched, the demo stopped', async () => ((await objects())['HlsSession'] ?? 0) === 0 && (await streamState('demo')).state === 'idle', HLS_SESSION_TIMEOUT_MS + 3000);
});
