// Issue 15 acceptance: headless Chromium plays over MSE with WebRTC off, fed as go2rtc's player
// feeds it (video-rtc.js onmse: the codecs MediaSource supports, addSourceBuffer on the answer,
// 'segments' mode, keep the last 5 s, playbackRate by the gap to the live edge): the demo and a
// gst-rtsp-server H.264+AAC camera. videoWidth > 0, currentTime advancing, audio decoded; then the
// same through camrelay's own page (stream.html?mode=mse).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';
const camSkip = chromiumSkip || (cameraCanRun('h264-aac') ? false : 'gst-rtsp-server with x264enc/voaacenc not available');
let app: CamrelayProcess;
let camera: GstCamera | undefined;
let browser: Chromium | undefined;

before(async () => {
  if (chromiumSkip) return;
  if (!camSkip) camera = await GstCamera.start({ pipeline: 'h264-aac' });
  app = await CamrelayProcess.start(testConfig({ demo: DEMO, ...(camera && { cam: camera.url() }) }));
  browser = await Chromium.launch();
});

after(async () => {
  await browser?.context.close();
  if (app) assert.equal(await app.stop(), 0);
  await camera?.stop();
});

// Browser-side code as text: the project typechecks without the DOM library.
const PLAYER = `(src) => {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.appendChild(video);
  const CODECS = ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'hvc1.1.6.L153.B0', 'mp4a.40.2', 'mp4a.40.5', 'flac', 'opus'];
  const state = (window.__mse = { type: '', errors: [], messages: 0, video, ws: undefined });
  const ms = new MediaSource();
  video.src = URL.createObjectURL(ms);
  ms.addEventListener('sourceopen', () => {
    const ws = (state.ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/ws?src=' + encodeURIComponent(src)));
    ws.binaryType = 'arraybuffer';
    let sb;
    const pending = [];
    const pump = () => {
      if (!sb || sb.updating || pending.length === 0) return;
      const n = pending.reduce((a, b) => a + b.byteLength, 0);
      const buf = new Uint8Array(n);
      let o = 0;
      for (const p of pending.splice(0)) { buf.set(new Uint8Array(p), o); o += p.byteLength; }
      sb.appendBuffer(buf);
    };
    const trim = () => {
      if (sb.updating || sb.buffered.length === 0) return;
      const start = sb.buffered.start(0), end = sb.buffered.end(sb.buffered.length - 1);
      if (end - 5 > start) { sb.remove(start, end - 5); ms.setLiveSeekableRange(end - 5, end); }
      if (video.currentTime < end - 5) video.currentTime = end - 5;
      const gap = end - video.currentTime;
      video.playbackRate = gap > 0.1 ? gap : 0.1;
    };
    ws.onopen = () => {
      const codecs = CODECS.filter((c) => MediaSource.isTypeSupported('video/mp4; codecs="' + c + '"')).join(',');
      ws.send(JSON.stringify({ type: 'mse', value: codecs }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        const m = JSON.parse(ev.data);
        if (m.type !== 'mse') { state.errors.push(m.value); return; }
        state.type = m.value;
        sb = ms.addSourceBuffer(m.value);
        sb.mode = 'segments';
        sb.addEventListener('updateend', () => { pump(); if (!sb.updating) trim(); });
        return;
      }
      state.messages++;
      pending.push(ev.data);
      pump();
    };
    video.play().catch(() => undefined);
  }, { once: true });
}`;

const SAMPLE = `(() => { const s = window.__mse; const v = s.video;
  return { type: s.type, errors: s.errors, messages: s.messages, width: v.videoWidth, time: v.currentTime,
    audioBytes: v.webkitAudioDecodedByteCount || 0, videoFrames: v.getVideoPlaybackQuality().totalVideoFrames, error: v.error ? v.error.message : '' }; })()`;

interface Sample {
  type: string;
  errors: string[];
  messages: number;
  width: number;
  time: number;
  audioBytes: number;
  videoFrames: number;
  error: string;
}

async function playsOverMse(page: Page, src: string, audioCodec: RegExp): Promise<Sample> {
  await page.goto(`${app.base}/api/streams`);
  await page.evaluate(`(${PLAYER})(${JSON.stringify(src)})`);
  let first: Sample | undefined;
  const last = await waitFor<Sample | undefined>(
    `${src}: moving video over MSE`,
    async () => {
      const s = await page.evaluate<Sample>(SAMPLE);
      if (s.error || s.errors.length) throw new Error(`${s.error} ${s.errors.join(', ')}`);
      if (s.width === 0) return undefined;
      first ??= s;
      return s.time > first.time + 1 && s.audioBytes > 0 ? s : undefined;
    },
    20_000,
    100,
  );
  assert.match(last.type, audioCodec);
  assert.ok(last.width > 0);
  return last;
}

test('Chromium plays the demo over MSE (H.264 + Opus), WebRTC off', { timeout: 60_000, skip: chromiumSkip }, async () => {
  const page = await browser!.page();
  try {
    const s = await playsOverMse(page, 'demo', /^video\/mp4; codecs="avc1\.[0-9A-F]{6},opus"$/);
    assert.equal(s.width, 640);
  } finally {
    await page.close();
  }
  await waitFor('the demo idle once the page is gone', async () => (await app.json<{ state: string }>('/api/streams?src=demo')).body.state === 'idle', 5000);
});

test('Chromium plays a gst H.264+AAC camera over MSE, audio decoded; closing the socket releases the camera within 1 s', { timeout: 60_000, skip: camSkip }, async () => {
  const page = await browser!.page();
  try {
    await playsOverMse(page, 'cam', /^video\/mp4; codecs="avc1\.[0-9A-F]{6},mp4a\.40\.2"$/);
    assert.equal(camera!.openConnections(), 1);
    await page.evaluate('window.__mse.ws.close()');
    const t0 = Date.now();
    await waitFor('the camera released', () => camera!.openConnections() === 0, 1000, 10);
    assert.ok(Date.now() - t0 <= 1000);
  } finally {
    await page.close();
  }
});

// The same through camrelay's own page (web/mode-mse.js), WebRTC forced off by ?mode=mse. The
// page's SourceBuffer takes the server's `mse` answer as it is (addSourceBuffer(m.value)): that
// answer, read off the page's socket, names the audio codec; webkitAudioDecodedByteCount shows
// Chromium decoding it (video.audioTracks is behind a flag in Chromium).
const PAGE_SAMPLE = `(() => { const v = document.querySelector('video');
  return { mode: v.dataset.mode || '', phase: v.dataset.phase || '', width: v.videoWidth, time: v.currentTime,
    audioBytes: v.webkitAudioDecodedByteCount || 0, videoFrames: v.getVideoPlaybackQuality().totalVideoFrames, error: v.error ? v.error.message : '' }; })()`;

interface PageSample {
  mode: string;
  phase: string;
  width: number;
  time: number;
  audioBytes: number;
  videoFrames: number;
  error: string;
}

async function pagePlaysOverMse(src: string, audioCodec: RegExp): Promise<{ sample: PageSample; answer: string; advanced: number }> {
  const page = await browser!.page();
  const answers: string[] = [];
  page.on('websocket', (ws) => {
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload !== 'string') return;
      const m = JSON.parse(payload) as { type: string; value?: string };
      if (m.type === 'mse') answers.push(String(m.value));
    });
  });
  try {
    await page.goto(`${app.base}/stream.html?src=${src}&mode=mse`);
    let first: PageSample | undefined;
    let last: PageSample | undefined;
    const s = await waitFor(
      `${src}: the page plays over MSE with audio`,
      async () => {
        const x = (last = await page.evaluate<PageSample>(PAGE_SAMPLE));
        if (x.error) throw new Error(x.error);
        if (x.width === 0 || x.mode !== 'mse') return undefined;
        first ??= x;
        return x.time > first.time + 1 && x.videoFrames > first.videoFrames && x.audioBytes > 0 && x.phase === 'playing' ? x : undefined;
      },
      20_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last: ${JSON.stringify(last)}`);
    });
    assert.equal(answers.length, 1, 'one mse answer on the page\'s socket');
    assert.match(answers[0]!, audioCodec);
    const consumers = (await app.json<{ consumers: { format_name?: string }[] }>(`/api/streams?src=${src}`)).body.consumers;
    assert.deepEqual(consumers.map((c) => c.format_name), ['mse/fmp4'], 'MSE only: no WebRTC session');
    return { sample: s, answer: answers[0]!, advanced: s.time - first!.time };
  } finally {
    await page.close({ runBeforeUnload: true });
  }
}

test('camrelay\'s page with ?mode=mse plays the demo (H.264 + Opus): videoWidth, currentTime advancing, audio decoded', { timeout: 60_000, skip: chromiumSkip }, async () => {
  const r = await pagePlaysOverMse('demo', /^video\/mp4; codecs="avc1\.[0-9A-F]{6},opus"$/);
  assert.equal(r.sample.width, 640);
  console.log(`# page mse demo: ${r.answer}, width ${r.sample.width}, currentTime +${r.advanced.toFixed(2)} s, ${r.sample.audioBytes} audio bytes decoded`);
  await waitFor('the demo idle once the page is gone', async () => (await app.json<{ state: string }>('/api/streams?src=demo')).body.state === 'idle', 5000);
});

test('camrelay\'s page with ?mode=mse plays a gst H.264+AAC camera: videoWidth, currentTime advancing, mp4a.40.2 audio decoded; the camera released after', { timeout: 60_000, skip: camSkip }, async () => {
  const r = await pagePlaysOverMse('cam', /^video\/mp4; codecs="avc1\.[0-9A-F]{6},mp4a\.40\.2"$/);
  assert.equal(r.sample.width, 320);
  console.log(`# page mse cam: ${r.answer}, width ${r.sample.width}, currentTime +${r.advanced.toFixed(2)} s, ${r.sample.audioBytes} audio bytes decoded`);
  await waitFor('the camera released once the page is gone', () => camera!.openConnections() === 0, 3000);
});
