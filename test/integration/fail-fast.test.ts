// Issue 13 item 5: a camera that refuses (closed port, unknown host, 401, 403, 404) fails every
// waiting viewer and snapshot at once with the reason, instead of after start_timeout (10 s), for
// the native RTSP client and for ffmpeg sources; and once nobody waits, no retry follows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { CamrelayProcess, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { ScriptedCamera } from '../helpers/scripted-camera.js';
import { Signalling } from '../helpers/signalling.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/** Well under start_timeout (10 s, the default kept here): the camera's answer, not a timer. */
const FAST_MS = 500;
/** How long to watch for a retry that must not come (the backoff base is 500 ms). */
const QUIET_MS = 1500;

let app: CamrelayProcess;
let closedPort = 0;
let cam401: ScriptedCamera;
let cam404: ScriptedCamera;
let cam403: ScriptedCamera;
let web: http.Server;
let webPort = 0;
const webHits: string[] = [];

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  closedPort = await freePort();
  cam401 = await ScriptedCamera.start();
  cam401.use({ DESCRIBE: (x) => x.reply(401, { 'WWW-Authenticate': 'Basic realm="cam"' }) });
  cam404 = await ScriptedCamera.start();
  cam404.use({ DESCRIBE: (x) => x.reply(404, {}, undefined, 'Not Found') });
  cam403 = await ScriptedCamera.start();
  cam403.use({ DESCRIBE: (x) => x.reply(403, {}, undefined, 'Forbidden') });
  // An HTTP camera that answers every request with the status its path names.
  web = http.createServer((req, res) => {
    webHits.push(req.url ?? '');
    res.statusCode = Number(/\/(\d{3})/.exec(req.url ?? '')?.[1] ?? 404);
    res.end();
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as net.AddressInfo).port;
  app = await CamrelayProcess.start(
    testConfig({
      refused: `rtsp://127.0.0.1:${closedPort}/cam`,
      nohost: 'rtsp://camera.invalid/cam',
      wrongpass: `rtsp://admin:wrong@127.0.0.1:${cam401.port}/cam`,
      missing: cam404.url('/nothing'),
      forbidden: cam403.url('/cam'),
      ff_refused: `ffmpeg:rtsp://127.0.0.1:${closedPort}/cam#video=h264`,
      ff_wrongpass: `ffmpeg:rtsp://admin:wrong@127.0.0.1:${cam401.port}/cam`,
      ff_missing: `ffmpeg:${cam404.url('/nothing')}`,
      ff_http401: `ffmpeg:http://127.0.0.1:${webPort}/401/video.mjpg#video=h264`,
      ff_http404: `ffmpeg:http://127.0.0.1:${webPort}/404/video.mjpg#video=h264`,
      ff_http403: `ffmpeg:http://127.0.0.1:${webPort}/403/video.mjpg#video=h264`,
      ff_nohost: 'ffmpeg:rtsp://camera.invalid/cam#video=h264',
    }),
  );
});

after(async () => {
  assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  for (const c of [cam401, cam404, cam403]) c.server.close();
  web.close();
});

const starts = (stream: string) => (l: LogLine) => l.stream === stream && l.msg === 'source starting';

/** One POST /api/webrtc offer: its status, error text and how long the answer took. */
async function post(src: string): Promise<{ status: number; error: string; ms: number }> {
  const v = new Viewer();
  try {
    const offer = await v.offer();
    const t0 = performance.now();
    const r = await request(`${app.base}/api/webrtc?src=${src}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'offer', sdp: offer }) });
    const ms = performance.now() - t0;
    return { status: r.status, error: r.status >= 300 ? String((JSON.parse(r.text) as { error?: string }).error) : '', ms };
  } finally {
    await v.close();
  }
}

async function wsOffer(src: string): Promise<{ error: string; ms: number }> {
  const v = new Viewer();
  const sig = await new Signalling(app.port, src).open();
  try {
    const sdp = await v.offer();
    const t0 = performance.now();
    sig.send({ type: 'webrtc/offer', value: sdp });
    const e = await sig.next((m) => m.type === 'error', 12000);
    return { error: String(e.value), ms: performance.now() - t0 };
  } finally {
    await sig.close();
    await v.close();
  }
}

async function snapshot(src: string): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const r = await request(`${app.base}/api/frame.jpeg?src=${src}`);
  return { status: r.status, text: r.text, ms: performance.now() - t0 };
}

/** All three kinds of waiter get `reason` within FAST_MS; afterwards no retry starts the source. */
async function failsFast(src: string, reason: RegExp, connections?: () => number): Promise<void> {
  const p = await post(src);
  assert.equal(p.status, 502, `${src}: POST ${p.status} ${p.error}`);
  assert.match(p.error, reason);
  assert.ok(p.ms < FAST_MS, `${src}: POST answered after ${Math.round(p.ms)} ms: ${p.error}`);

  const w = await wsOffer(src);
  assert.match(w.error, /^webrtc\/offer: /);
  assert.match(w.error, reason);
  assert.ok(w.ms < FAST_MS, `${src}: WS error after ${Math.round(w.ms)} ms: ${w.error}`);

  const s = await snapshot(src);
  assert.equal(s.status, 502, `${src}: snapshot ${s.status} ${s.text}`);
  assert.match(s.text, reason);
  assert.ok(s.ms < FAST_MS, `${src}: snapshot answered after ${Math.round(s.ms)} ms: ${s.text}`);

  // Nobody waits any more: the stream goes idle and is not retried.
  await waitFor(`${src} idle`, async () => (await app.json<{ state: string }>(`/api/streams?src=${src}`)).body.state === 'idle', 2000);
  // By the log lines' own time: those of the requests above may still be on their way.
  const mark = Date.now();
  const seen = connections?.();
  await new Promise((r) => setTimeout(r, QUIET_MS)); // a window in which nothing may happen
  const late = app.logs.filter((l) => l.stream === src && Number(l.time) > mark);
  assert.equal(late.filter(starts(src)).length, 0, `${src}: retried after everyone got the error: ${JSON.stringify(late).slice(0, 1500)}`);
  if (connections) assert.equal(connections(), seen, `${src}: the camera saw another connection`);
}

test('native RTSP: refused port, unknown host, 401 (wrong password), 403, 404 reach the viewer, the WebSocket and a snapshot at once; no retry after', { timeout: 60000 }, async () => {
  await failsFast('refused', /ECONNREFUSED/);
  await failsFast('nohost', /ENOTFOUND|EAI_AGAIN/);
  await failsFast('wrongpass', /401.*wrong username or password/, () => cam401.connections);
  await failsFast('forbidden', /DESCRIBE: 403 Forbidden/, () => cam403.connections);
  await failsFast('missing', /DESCRIBE: 404 Not Found/, () => cam404.connections);
});

test('ffmpeg sources: Connection refused, Server returned 401/403/404, method DESCRIBE failed: 401/404, Name or service not known: at once; no retry after', { timeout: 90000 }, async () => {
  await failsFast('ff_refused', /Connection refused/);
  await failsFast('ff_nohost', /Name or service not known|Temporary failure in name resolution/);
  await failsFast('ff_wrongpass', /401/, () => cam401.connections);
  await failsFast('ff_missing', /404/, () => cam404.connections);
  for (const status of [401, 403, 404]) {
    const before = webHits.length;
    await failsFast(`ff_http${status}`, new RegExp(`Server returned ${status}`), () => webHits.length);
    assert.ok(webHits.length > before);
  }
});

test('several viewers waiting on one refused start all get the reason at once', { timeout: 30000 }, async () => {
  const t0 = performance.now();
  const all = await Promise.all([post('refused'), post('refused'), snapshot('refused'), wsOffer('refused')]);
  for (const r of all) assert.match('error' in r ? r.error : r.text, /ECONNREFUSED/);
  assert.ok(performance.now() - t0 < 2 * FAST_MS, `all answered within ${Math.round(performance.now() - t0)} ms`);
});
