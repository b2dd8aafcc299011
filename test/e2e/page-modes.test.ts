// The page's modes in a real browser (Debian's Chromium through playwright-core) against a real
// camrelay process: ?mode=mse plays over MSE, ?mode=mjpeg shows pictures, the default plays
// WebRTC, and a WebRTC that cannot run (no RTCPeerConnection) or shows no frame (a peer that
// never connects) makes way for MSE, the overlay and the details saying why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';
let app: CamrelayProcess;
let browser: Chromium | undefined;

before(async () => {
  if (chromiumSkip) return;
  app = await CamrelayProcess.start(testConfig({ demo: DEMO }));
  browser = await Chromium.launch();
});

after(async () => {
  await browser?.close();
  if (app) await app.stop();
});

interface Sample {
  mode: string;
  phase: string;
  width: number;
  time: number;
  frames: number;
  overlay: string;
  details: string;
}

// Browser-side code as text: the project typechecks without the DOM library.
const SAMPLE = `(async () => {
  const v = document.querySelector('video');
  return { mode: v.dataset.mode || '', phase: v.dataset.phase || '', width: v.videoWidth, time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames,
    overlay: document.getElementById('stats').textContent, details: document.getElementById('mode').textContent };
})()`;

/** Waits until the video element plays in `mode` (width, currentTime and frames advancing), the player says so and the overlay names it. */
async function waitPlaying(page: Page, mode: string, ms: number): Promise<Sample> {
  let first: Sample | undefined;
  let last: Sample | undefined;
  try {
    return await waitFor(
      `moving video over ${mode}`,
      async () => {
        const s = (last = await page.evaluate<Sample>(SAMPLE));
        if (s.width === 0 || s.mode !== mode) return undefined;
        first ??= s;
        const moving = s.time > first.time + 0.5 && s.frames > first.frames;
        return moving && s.phase === 'playing' && s.overlay.startsWith(`mode ${mode}\n`) ? s : undefined;
      },
      ms,
      100,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; last: ${JSON.stringify(last)}`);
  }
}

const released = (ms = 3000) => waitFor('the demo released', () => app.children().length === 0, ms, 20);
/** An HLS session ends when nothing has fetched from it for this long (the server's documented timeout). */
const HLS_SESSION_TIMEOUT_MS = 5000;

test('?mode=mse plays the demo over MSE', { timeout: 40_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    await page.goto(`${app.base}/stream.html?src=demo&mode=mse`);
    const s = await waitPlaying(page, 'mse', 15_000);
    assert.equal(s.width, 640);
    assert.doesNotMatch(s.overlay, /skipped/);
    assert.match(s.details, /mode: playing over mse/);
    // The server's viewer is an MSE one.
    const consumers = (await app.json<{ consumers: { format_name?: string }[] }>('/api/streams?src=demo')).body.consumers;
    assert.deepEqual(consumers.map((c) => c.format_name), ['mse/fmp4']);
    console.log(`# mse overlay: ${s.overlay.replace(/\n/g, ' | ')}`);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await released();
});

test('?mode=mjpeg shows pictures from the socket', { timeout: 40_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    await page.goto(`${app.base}/stream.html?src=demo&mode=mjpeg`);
    const PICTURE = `(() => { const i = document.querySelector('img.mjpeg');
      return i ? { width: i.naturalWidth, frames: Number(i.dataset.frames || 0), blob: i.src.startsWith('blob:'), video: document.querySelector('video').hidden,
        overlay: document.getElementById('stats').textContent } : undefined; })()`;
    type Picture = { width: number; frames: number; blob: boolean; video: boolean; overlay: string };
    const first = await waitFor('a picture', async () => {
      const p = await page.evaluate<Picture | undefined>(PICTURE);
      return p && p.width > 0 && p.frames > 0 ? p : undefined;
    }, 15_000, 100);
    const later = await waitFor('more pictures', async () => {
      const p = await page.evaluate<Picture | undefined>(PICTURE);
      // naturalWidth is 0 while the next picture's src loads (the page swaps it in from onload), so
      // the size is read at a moment one is there, as for the first.
      return p && p.width > 0 && p.frames >= first.frames + 5 && p.overlay.startsWith('mode mjpeg\n') ? p : undefined;
    }, 10_000, 100);
    assert.equal(later.width, 640);
    assert.ok(later.blob, 'pictures come from the socket as object URLs');
    assert.ok(later.video, 'the video element is hidden while pictures show');
    console.log(`# mjpeg: ${later.frames} pictures; overlay: ${later.overlay.replace(/\n/g, ' | ')}`);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await released();
});

test('the default mode plays WebRTC and the overlay says so', { timeout: 40_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    await page.goto(`${app.base}/stream.html?src=demo`);
    const s = await waitPlaying(page, 'webrtc', 10_000);
    assert.doesNotMatch(s.overlay, /skipped/);
    assert.match(s.details, /mode: playing over webrtc \(order webrtc, mse, hls, mjpeg\)/);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await released();
});

test('mode=webrtc,mse without RTCPeerConnection falls back to MSE and says why', { timeout: 40_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    await page.addInitScript('delete window.RTCPeerConnection');
    await page.goto(`${app.base}/stream.html?src=demo&mode=webrtc,mse`);
    const s = await waitPlaying(page, 'mse', 15_000);
    assert.match(s.overlay, /\nskipped webrtc: RTCPeerConnection not available$/);
    assert.match(s.details, /mode: playing over mse \(order webrtc, mse\) · skipped webrtc: RTCPeerConnection not available/);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await released();
});

test('a WebRTC that shows no frame within 10 s makes way for MSE, its server session released', { timeout: 60_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    // The answer is never applied: signalling works, no media ever comes.
    await page.addInitScript(`RTCPeerConnection.prototype.setRemoteDescription = function () { return new Promise(() => {}); };`);
    await page.goto(`${app.base}/stream.html?src=demo`);
    const webrtcSession = await waitFor('the WebRTC session', async () => (await page.locator('video').getAttribute('data-session')) ?? '', 5000, 50);
    const s = await waitPlaying(page, 'mse', 25_000);
    assert.match(s.overlay, /\nskipped webrtc: no frame within 10 s$/);
    assert.ok(s.overlay.includes('first frame'), s.overlay);
    // Only the MSE viewer is left: the WebRTC session was ended when its mode was given up.
    const consumers = (await app.json<{ consumers: { id: string; format_name?: string }[] }>('/api/streams?src=demo')).body.consumers;
    assert.ok(!consumers.some((c) => c.id === webrtcSession), `webrtc session ${webrtcSession} released: ${JSON.stringify(consumers)}`);
    assert.deepEqual(consumers.map((c) => c.format_name), ['mse/fmp4']);
    console.log(`# fallback overlay: ${s.overlay.replace(/\n/g, ' | ')}`);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await released();
});

test('without WebRTC, MSE and HLS the default order ends at MJPEG, every skip named', { timeout: 40_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    await page.addInitScript(`delete window.RTCPeerConnection; delete window.MediaSource; delete window.ManagedMediaSource;
      HTMLMediaElement.prototype.canPlayType = () => '';`);
    await page.goto(`${app.base}/stream.html?src=demo`);
    const overlay = await waitFor('mjpeg with its reasons', async () => {
      const t = (await page.locator('#stats').textContent()) ?? '';
      const w = await page.evaluate<number>(`document.querySelector('img.mjpeg')?.naturalWidth ?? 0`);
      return w > 0 && /^mode mjpeg\n[\s\S]*frames [1-9]/.test(t) ? t : '';
    }, 15_000, 100);
    assert.deepEqual(overlay.split('\n').filter((l) => l.startsWith('skipped')), [
      'skipped webrtc: RTCPeerConnection not available',
      'skipped mse: MediaSource not available',
      'skipped hls: not supported by this browser',
    ]);
    assert.match((await page.locator('#mode').textContent()) ?? '', /^mode: playing over mjpeg/);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await released();
});

test('MJPEG falls back to /api/stream.mjpeg when the socket cannot', { timeout: 40_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    // A server without MJPEG on its socket: the request is answered with an error.
    await page.addInitScript(`{ const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (m) {
        if (m === '{"type":"mjpeg"}') { this.dispatchEvent(new MessageEvent('message', { data: '{"type":"error","value":"mjpeg: not supported"}' })); return; }
        return send.call(this, m);
      }; }`);
    await page.goto(`${app.base}/stream.html?src=demo&mode=mjpeg`);
    const img = await waitFor('stream.mjpeg in the img', async () => {
      const i = await page.evaluate<{ src: string; width: number } | undefined>(`(() => { const i = document.querySelector('img.mjpeg'); return i && { src: i.src, width: i.naturalWidth }; })()`);
      return i && i.width > 0 ? i : undefined;
    }, 15_000, 100);
    assert.equal(img.src, `${app.base}/api/stream.mjpeg?src=demo`);
    assert.equal(img.width, 640);
    await waitFor('playing', async () => (await page.locator('video').getAttribute('data-phase')) === 'playing', 5000, 50);
    const consumers = (await app.json<{ consumers: { format_name?: string }[] }>('/api/streams?src=demo')).body.consumers;
    assert.equal(consumers.length, 1, JSON.stringify(consumers));
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await released();
});

test('the mode list and the MSE codecs are built as go2rtc\'s player builds them', { timeout: 20_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    await page.goto(`${app.base}/links.html`);
    const got = await page.evaluate<{ modes: string[][]; chrome: string; safari13: string; safari12: string; none: string }>(`(async () => {
      const { parseModes } = await import('./player.js');
      const { mseCodecs } = await import('./mode-mse.js');
      const all = () => true;
      return {
        modes: ['mse', 'webrtc,mse', 'webrtc/tcp,MSE,mp4', 'x', ''].map(parseModes),
        chrome: mseCodecs((t) => MediaSource.isTypeSupported(t), navigator.userAgent),
        safari13: mseCodecs(all, 'Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1 Safari/605.1.15'),
        safari12: mseCodecs(all, 'Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 Safari/605.1.15'),
        none: mseCodecs(() => false, navigator.userAgent),
      };
    })()`);
    assert.deepEqual(got.modes, [['mse'], ['webrtc', 'mse'], ['webrtc', 'mse'], ['webrtc', 'mse', 'hls', 'mjpeg'], ['webrtc', 'mse', 'hls', 'mjpeg']]);
    assert.equal(got.chrome, 'avc1.640029,avc1.64002A,avc1.640033,mp4a.40.2,mp4a.40.5,flac,opus');
    assert.equal(got.safari13, 'avc1.640029,avc1.64002A,avc1.640033,hvc1.1.6.L153.B0,mp4a.40.2,mp4a.40.5');
    assert.equal(got.safari12, 'avc1.640029,avc1.64002A,avc1.640033,hvc1.1.6.L153.B0');
    assert.equal(got.none, '');
  } finally {
    await page.close();
  }
});

test('?mode=hls plays the demo natively where the browser plays HLS', { timeout: 60_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    await page.goto(`${app.base}/stream.html?src=demo&mode=hls`);
    const native = await page.evaluate<string>(`document.querySelector('video').canPlayType('application/vnd.apple.mpegurl')`);
    if (!native) {
      // This Chromium plays no HLS by itself: the page must say so.
      const t = await waitFor('the reason', async () => /hls: not supported by this browser/.test((await page.locator('#status').textContent()) ?? ''), 5000, 50);
      assert.ok(t);
      return;
    }
    const s = await waitPlaying(page, 'hls', 40_000);
    assert.equal(s.width, 640);
    assert.match(s.details, /mode: playing over hls/);
    console.log(`# hls overlay: ${s.overlay.replace(/\n/g, ' | ')}`);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  // HLS has no connection to close: the session ends by its timeout.
  await released(HLS_SESSION_TIMEOUT_MS + 3000);
});
