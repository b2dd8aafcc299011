// Issue 13 item 2 with go2rtc's real player: www/video-rtc.js (the <video-stream> element the
// WebRTC Camera card and other dashboards embed) in headless Chromium, in its default mode
// webrtc,mse,hls,mjpeg, pointed at camrelay's /api/ws. The page and the module come from another
// loopback server, as a dashboard card served by Home Assistant on its own port, so camrelay runs
// with api.origin "*" (go2rtc's key for that case). go2rtc's file is not part of camrelay (we do
// not ship other projects' code): the test reads it from $GO2RTC_VIDEO_RTC_JS (a copy of go2rtc's
// www/video-rtc.js) and is skipped, saying so, without it. test/helpers/go2rtc-player.ts drives a
// peer the same way in every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { waitFor } from '../helpers/wait.js';

const PLAYER = process.env.GO2RTC_VIDEO_RTC_JS ?? '';
const skip =
  chromiumSkip ||
  (PLAYER && existsSync(PLAYER) ? false : `set GO2RTC_VIDEO_RTC_JS to a copy of go2rtc's www/video-rtc.js to run this (${PLAYER ? `not found: ${PLAYER}` : 'unset'})`);
const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';

const page = (wsUrl: string) => `<!doctype html><body><script type="module">
import { VideoRTC } from './video-rtc.js';
customElements.define('video-stream', VideoRTC);
const el = document.createElement('video-stream');
el.mode = 'webrtc,mse,hls,mjpeg';
document.body.appendChild(el);
el.src = ${JSON.stringify(wsUrl)};
window.player = el;
</script></body>`;

test("go2rtc's video-rtc.js in Chromium (mode webrtc,mse,hls,mjpeg) plays camrelay's demo over WebRTC", { timeout: 60000, skip }, async () => {
  const config = testConfig({ demo: DEMO }).replace('disconnect: 2s', 'disconnect: 5s');
  assert.ok(config.includes('api: { listen: "127.0.0.1:0" }'));
  const app = await CamrelayProcess.start(config.replace('api: { listen: "127.0.0.1:0" }', 'api: { listen: "127.0.0.1:0", origin: "*" }'));
  const site = http.createServer((req, res) => {
    const js = req.url?.endsWith('/video-rtc.js');
    res.setHeader('Content-Type', js ? 'text/javascript' : 'text/html');
    res.end(js ? readFileSync(PLAYER, 'utf8') : page(`ws://127.0.0.1:${app.port}/api/ws?src=demo`));
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  const browser = await Chromium.launch();
  try {
    const page = await browser.page();
    const base = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
    const sent: string[] = [];
    page.on('websocket', (ws) => {
      ws.on('framereceived', (f) => sent.push(`< ${String(f.payload).slice(0, 120)}`));
      ws.on('framesent', (f) => sent.push(`> ${String(f.payload).slice(0, 60)}`));
    });
    await page.goto(`${base}index.html`);
    const width = await waitFor(
      'video playing in the player',
      () => page.evaluate(() => (window as unknown as { player?: { video?: HTMLVideoElement } }).player?.video?.videoWidth ?? 0),
      30000,
      200,
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}; WebSocket frames: ${JSON.stringify(sent)}`);
    });
    assert.equal(width, 320);
    const errors = sent.filter((s) => s.startsWith('< {"type":"error"'));
    assert.ok(sent.some((s) => s.startsWith('< {"type":"mse"')), `MSE was answered (issue 15): ${JSON.stringify(sent)}`);
    assert.ok(!errors.some((e) => e.includes('webrtc/offer')), JSON.stringify(errors));
    // Playing over WebRTC, the player closed its socket; the video goes on without it.
    const t = await page.evaluate(() => (window as unknown as { player: { video: HTMLVideoElement } }).player.video.currentTime);
    await waitFor('the video advances', () => page.evaluate((t0) => (window as unknown as { player: { video: HTMLVideoElement } }).player.video.currentTime > t0 + 1, t), 10000, 200);
    assert.equal(await page.evaluate(() => (window as unknown as { player: { pcState: number } }).player.pcState), 1, 'WebRTC is the mode playing (pcState OPEN)');
  } finally {
    await browser.close();
    site.close();
    assert.equal(await app.stop(), 0);
  }
});
