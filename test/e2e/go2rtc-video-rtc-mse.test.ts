// Issue 15 with go2rtc's real player: www/video-rtc.js in headless Chromium with mode 'mse'
// (WebRTC off) against camrelay's /api/ws: the demo (H.264 + Opus) and a gst-rtsp-server
// H.264+AAC camera play, audio decoded; with the default modes on the AAC camera MSE wins (WebRTC
// carries no AAC), as go2rtc's onpcvideo weighs them. Like go2rtc-video-rtc.test.ts, go2rtc's file
// is read from $GO2RTC_VIDEO_RTC_JS (not shipped) and the test is skipped, saying so, without it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { waitFor } from '../helpers/wait.js';

const PLAYER = process.env.GO2RTC_VIDEO_RTC_JS ?? '';
const skip =
  chromiumSkip ||
  (PLAYER && existsSync(PLAYER) ? false : `set GO2RTC_VIDEO_RTC_JS to a copy of go2rtc's www/video-rtc.js to run this (${PLAYER ? `not found: ${PLAYER}` : 'unset'})`) ||
  (cameraCanRun('h264-aac') ? false : 'gst-rtsp-server with x264enc/voaacenc not available');
const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';

let app: CamrelayProcess | undefined;
let camera: GstCamera | undefined;
let site: http.Server | undefined;
let browser: Chromium | undefined;

const page = (wsUrl: string, mode: string) => `<!doctype html><body><script type="module">
import { VideoRTC } from './video-rtc.js';
customElements.define('video-stream', VideoRTC);
const el = document.createElement('video-stream');
el.mode = ${JSON.stringify(mode)};
document.body.appendChild(el);
el.src = ${JSON.stringify(wsUrl)};
window.player = el;
</script></body>`;

before(async () => {
  if (skip) return;
  camera = await GstCamera.start({ pipeline: 'h264-aac' });
  const config = testConfig({ demo: DEMO, cam: camera.url() }).replace('api: { listen: "127.0.0.1:0" }', 'api: { listen: "127.0.0.1:0", origin: "*" }');
  app = await CamrelayProcess.start(config);
  site = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const js = url.pathname.endsWith('/video-rtc.js');
    res.setHeader('Content-Type', js ? 'text/javascript' : 'text/html');
    res.end(js ? readFileSync(PLAYER, 'utf8') : page(`ws://127.0.0.1:${app!.port}/api/ws?src=${url.searchParams.get('src')}`, url.searchParams.get('mode') ?? 'mse'));
  });
  await new Promise<void>((r) => site!.listen(0, '127.0.0.1', r));
  browser = await Chromium.launch();
});

after(async () => {
  await browser?.close();
  site?.close();
  if (app) assert.equal(await app.stop(), 0);
  await camera?.stop();
});

interface State {
  width: number;
  time: number;
  audio: number;
  pc: number;
  ws: number;
}
const STATE = `(() => { const p = window.player; const v = p && p.video;
  return { width: v ? v.videoWidth : 0, time: v ? v.currentTime : 0, audio: v ? v.webkitAudioDecodedByteCount || 0 : 0,
    pc: p && p.pc ? 1 : 0, ws: p && p.ws ? p.ws.readyState : -1 }; })()`;

async function plays(src: string, mode: string): Promise<State> {
  const p = await browser!.page();
  const frames: string[] = [];
  p.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload).slice(0, 100))));
  await p.goto(`http://127.0.0.1:${(site!.address() as AddressInfo).port}/index.html?src=${src}&mode=${encodeURIComponent(mode)}`);
  let t0: number | undefined;
  try {
    return await waitFor<State | undefined>(
      `${src} (${mode}): video advancing with audio`,
      async () => {
        const s = await p.evaluate<State>(STATE);
        if (s.width === 0) return undefined;
        t0 ??= s.time;
        return s.time > t0 + 1 && s.audio > 0 ? s : undefined;
      },
      30_000,
      200,
    );
  } catch (e) {
    throw new Error(`${String(e)}; frames: ${JSON.stringify(frames.filter((f) => f.startsWith('{')))}`);
  } finally {
    await p.close();
  }
}

test("go2rtc's video-rtc.js, mode mse: the demo plays with its Opus", { timeout: 60_000, skip }, async () => {
  const s = await plays('demo', 'mse');
  assert.equal(s.width, 320);
});

test("go2rtc's video-rtc.js, mode mse: the H.264+AAC camera plays with its AAC", { timeout: 60_000, skip }, async () => {
  await plays('cam', 'mse');
});

test("go2rtc's video-rtc.js, default modes, AAC camera: plays with its AAC, the MSE socket open (WebRTC carries no AAC, so MSE weighs more)", { timeout: 60_000, skip }, async () => {
  const s = await plays('cam', 'webrtc,mse,hls,mjpeg');
  assert.equal(s.ws, 1, 'the MSE socket is open');
});
