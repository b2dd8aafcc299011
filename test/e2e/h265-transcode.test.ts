// Issues 16 and 15 in a real browser (Debian's headless Chromium through playwright-core) against a
// real camrelay process and gst-rtsp-server cameras. The page (stream.html, served by camrelay from
// web/, ?mode= forcing one mode) plays an H.265 camera over WebRTC and over MSE through the
// automatic H.264 transcode (one ffmpeg for two pages, gone within 1 s of the last page closing),
// and an H.264 + G.711 camera over MSE with its audio, made Opus or AAC by an automatic transcode
// that lives only while the page is open.
//
// What this Chromium offers (checked in the first test, and logged): its WebRTC receiver lists VP8,
// VP9, H.264 and AV1, no H.265, and MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L153.B0"')
// is false; it has no video.audioTracks (behind a flag), so audio is judged by
// webkitAudioDecodedByteCount and the SourceBuffer's type.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { childrenNamed } from '../helpers/proc-children.js';
import { waitFor } from '../helpers/wait.js';

const skip = chromiumSkip || (cameraCanRun('h265-pcma') && cameraCanRun('h264-pcma') ? false : 'gst-rtsp-server with x264enc/x265enc/alawenc not available');
let app: CamrelayProcess;
let hevc: GstCamera | undefined;
let g711: GstCamera | undefined;
let browser: Chromium | undefined;

/** What the browser says it can decode. */
interface Caps {
  rtc: string[];
  mseHevc: boolean;
  /** Whether the page's MSE offer lists opus (mode-mse.js offers what MediaSource supports). */
  mseOpus: boolean;
  ua: string;
}
let caps: Caps;

before(async () => {
  if (skip) return;
  hevc = await GstCamera.start({ pipeline: 'h265-pcma', mount: '/hevc' });
  g711 = await GstCamera.start({ pipeline: 'h264-pcma', mount: '/g711' });
  app = await CamrelayProcess.start(testConfig({ hevc: hevc.url(), g711: g711.url() }));
  // The startup probe of hardware encoders may run ffmpeg children of its own: wait for its end
  // (the route answers once it is done), so that every ffmpeg counted below is a transcode.
  assert.equal((await app.json('/api/ffmpeg/hardware')).status, 200);
  browser = await Chromium.launch();
  const page = await browser.page();
  try {
    await page.goto(`${app.base}/links.html`);
    caps = await page.evaluate<Caps>(`({
      rtc: RTCRtpReceiver.getCapabilities('video').codecs.map((c) => c.mimeType),
      mseHevc: MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L153.B0"'),
      mseOpus: MediaSource.isTypeSupported('video/mp4; codecs="opus"'),
      ua: navigator.userAgent,
    })`);
  } finally {
    await page.close();
  }
});

after(async () => {
  await browser?.close();
  if (app) assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await hevc?.stop();
  await g711?.stop();
});

const ffmpegs = () => childrenNamed(app.pid, ['ffmpeg']);
const rtcHevc = () => caps.rtc.some((m) => m.toLowerCase() === 'video/h265');

interface StreamView {
  state: string;
  producers: { url: string; transcode?: string }[];
  consumers: { format_name?: string; transcoded?: string[] }[];
}
const streamView = async (name: string): Promise<StreamView> => (await app.json<StreamView>(`/api/streams?src=${name}`)).body;
/** The SourceBuffer type of H.264 with the audio codec the page's MSE offer leads camrelay to. */
const mseType = () => new RegExp(`^video/mp4; codecs="avc1\\.[0-9A-Fa-f]{6},${caps.mseOpus ? 'opus' : 'mp4a\\.40\\.2'}"$`);
const autoProducers = (v: StreamView) => v.producers.filter((p) => p.transcode === 'auto').map((p) => p.url);
/** The stream's consumers but the RTSP readers of its own transcodes (each ffmpeg reads the stream back). */
const viewers = (v: StreamView) => v.consumers.filter((c) => c.format_name !== 'rtsp');

interface Sample {
  mode: string;
  phase: string;
  width: number;
  time: number;
  frames: number;
  audioBytes: number;
  types: string[];
  /** The video codec of the page's WebRTC inbound stream, from getStats. */
  rtcCodec: string;
  status: string;
}

// Browser-side code as text: the project typechecks without the DOM library.
const SAMPLE = `(async () => {
  const v = document.getElementById('video');
  let rtcCodec = '';
  for (const pc of window.__peers || []) {
    if (pc.connectionState === 'closed') continue;
    const r = await pc.getStats();
    for (const s of r.values()) if (s.type === 'inbound-rtp' && s.kind === 'video' && s.codecId) rtcCodec = r.get(s.codecId)?.mimeType || '';
  }
  return { rtcCodec, mode: v.dataset.mode || '', phase: v.dataset.phase || '', width: v.videoWidth, time: v.currentTime,
    frames: v.getVideoPlaybackQuality().totalVideoFrames, audioBytes: v.webkitAudioDecodedByteCount || 0,
    types: window.__sourceBufferTypes || [], status: document.getElementById('status').textContent };
})()`;

/**
 * Records what the page makes, without changing it: every SourceBuffer type it asks for (the
 * codecs camrelay's MSE answer named) and every peer connection (to read the codec it receives).
 */
const RECORD = `{ const add = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (type) { (window.__sourceBufferTypes ??= []).push(type); return add.call(this, type); };
  const PC = RTCPeerConnection;
  window.RTCPeerConnection = class extends PC { constructor(...a) { super(...a); (window.__peers ??= []).push(this); } }; }`;

/** Opens the single-stream page of `src` in `mode` and waits until its video plays: width, and currentTime and frames advancing. */
async function openPlaying(src: string, mode: string, ms = 25_000, audio = false): Promise<{ page: Page; sample: Sample }> {
  const page = await browser!.page();
  await page.addInitScript(RECORD);
  await page.goto(`${app.base}/stream.html?src=${src}&mode=${mode}`);
  let first: Sample | undefined;
  let last: Sample | undefined;
  try {
    const sample = await waitFor(
      `${src}: moving video over ${mode}`,
      async () => {
        const s = (last = await page.evaluate<Sample>(SAMPLE));
        if (s.width === 0 || s.mode !== mode) return undefined;
        first ??= s;
        const moving = s.time > first.time + 1 && s.frames > first.frames;
        const sounding = !audio || s.audioBytes > first.audioBytes;
        return moving && sounding && s.phase === 'playing' ? s : undefined;
      },
      ms,
      100,
    );
    return { page, sample };
  } catch (e) {
    await page.close({ runBeforeUnload: true });
    throw new Error(`${(e as Error).message}; last: ${JSON.stringify(last)}`);
  }
}

test('this headless Chromium takes no H.265: neither in WebRTC nor in MSE', { timeout: 10_000, skip }, () => {
  console.log(`# ${caps.ua}\n# WebRTC video codecs: ${[...new Set(caps.rtc)].join(', ')}\n# MSE hvc1.1.6.L153.B0: ${caps.mseHevc}`);
  assert.ok(caps.rtc.includes('video/H264'), 'H.264 over WebRTC');
  // The tests below follow whatever is found; this states what they ran against.
  assert.equal(rtcHevc(), false, 'no H.265 in RTCRtpReceiver.getCapabilities');
  assert.equal(caps.mseHevc, false, 'no HEVC in MediaSource');
});

test('two pages play the H.265 camera over WebRTC through one shared H.264 transcode; it exits within 1 s of the last page closing', { timeout: 90_000, skip }, async () => {
  const pages: Page[] = [];
  try {
    const a = await openPlaying('hevc', 'webrtc');
    pages.push(a.page);
    assert.equal(a.sample.width, 320);
    const b = await openPlaying('hevc', 'webrtc');
    pages.push(b.page);
    assert.equal(b.sample.width, 320);
    const view = await streamView('hevc');
    const webrtc = viewers(view);
    assert.deepEqual(webrtc.map((c) => c.format_name), ['webrtc', 'webrtc'], JSON.stringify(view.consumers));
    if (rtcHevc()) {
      // A Chromium that decodes H.265 gets the camera as it is.
      assert.deepEqual(autoProducers(view), []);
      assert.equal(ffmpegs().length, 0);
      return;
    }
    assert.equal(a.sample.rtcCodec, 'video/H264');
    assert.equal(b.sample.rtcCodec, 'video/H264');
    const transcode = ffmpegs();
    assert.equal(transcode.length, 1, 'one transcode for both pages');
    assert.deepEqual(autoProducers(view), ['ffmpeg:hevc#video=h264#hardware']);
    assert.deepEqual(webrtc.map((c) => c.transcoded), [['video'], ['video']], 'both pages get transcoded video (their PCMA as it is)');

    await pages.shift()!.close({ runBeforeUnload: true });
    await waitFor('the first page\'s session ended', async () => viewers(await streamView('hevc')).length === 1, 5_000, 20);
    assert.deepEqual(ffmpegs(), transcode, 'the second page still watches: the same transcode runs on');
    // The session ends on the page's pagehide: the player's stop sends DELETE /api/webrtc?id=
    // (keepalive) at once; camrelay would otherwise notice the closed peer only after its
    // disconnect timeout (2 s here). Closing the session releases the transcode's last viewer,
    // and the transcode's ffmpeg is stopped (q, then signals after stop_grace).
    const left = Date.now();
    await pages.shift()!.close({ runBeforeUnload: true });
    await waitFor('the transcode exited', () => ffmpegs().length === 0, 5_000, 5);
    const gone = Date.now() - left;
    console.log(`# webrtc: transcode gone ${gone} ms after the last page closed`);
    assert.ok(gone < 1000, `transcode gone ${gone} ms after the last page closed`);
  } finally {
    for (const p of pages) await p.close({ runBeforeUnload: true });
  }
  await waitFor('the camera released', async () => (await streamView('hevc')).state === 'idle', 5_000);
  assert.deepEqual(autoProducers(await streamView('hevc')), []);
});

test('the page plays the H.265 camera over MSE through the H.264 transcode', { timeout: 60_000, skip }, async () => {
  const { page, sample } = await openPlaying('hevc', 'mse', 25_000, true);
  try {
    assert.equal(sample.width, 320);
    assert.ok(sample.audioBytes > 0, 'audio decoded');
    const view = await streamView('hevc');
    assert.deepEqual(viewers(view).map((c) => c.format_name), ['mse/fmp4']);
    if (caps.mseHevc) {
      assert.match(sample.types.join(), /hvc1/);
      assert.deepEqual(autoProducers(view).filter((u) => u.includes('#video=')), []);
      return;
    }
    // H.264 from the transcode; the camera's G.711 is made Opus (when the page lists it, as this
    // Chromium does: camrelay tries Opus before AAC) or AAC by a second one.
    const audio = caps.mseOpus ? 'opus' : 'aac';
    assert.equal(sample.types.length, 1);
    assert.match(sample.types[0]!, mseType());
    console.log(`# hevc over mse: ${sample.types[0]}`);
    assert.deepEqual(autoProducers(view).sort(), [`ffmpeg:hevc#audio=${audio}`, 'ffmpeg:hevc#video=h264#hardware']);
    assert.equal(ffmpegs().length, 2, 'the video and the audio transcode');
    assert.deepEqual(viewers(view)[0]!.transcoded?.sort(), ['audio', 'video']);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  // MSE ends with its socket, closed by the page's pagehide.
  await waitFor('the transcodes and the camera released', async () => ffmpegs().length === 0 && (await streamView('hevc')).state === 'idle', 5_000);
});

test('issue 15: the page plays an H.264 + G.711 camera over MSE with audio, from an automatic audio transcode that ends with the page', { timeout: 60_000, skip }, async () => {
  const { page, sample } = await openPlaying('g711', 'mse', 25_000, true);
  // Opus when the page lists it (this Chromium does; camrelay tries Opus before AAC), else AAC.
  const audio = caps.mseOpus ? 'opus' : 'aac';
  try {
    assert.equal(sample.width, 320);
    assert.ok(sample.audioBytes > 0, 'audio decoded (webkitAudioDecodedByteCount)');
    assert.equal(sample.types.length, 1);
    assert.match(sample.types[0]!, mseType(), 'the SourceBuffer carries the MP4 audio codec');
    const view = await streamView('g711');
    assert.deepEqual(autoProducers(view), [`ffmpeg:g711#audio=${audio}`], 'the running audio transcode, transcode: auto');
    assert.equal(ffmpegs().length, 1);
    assert.deepEqual(viewers(view).map((c) => [c.format_name, c.transcoded]), [['mse/fmp4', ['audio']]]);
    console.log(`# g711 over mse: ${sample.types[0]}, ${sample.audioBytes} audio bytes decoded`);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await waitFor('the audio transcode gone', async () => ffmpegs().length === 0 && autoProducers(await streamView('g711')).length === 0, 5_000);
  await waitFor('the camera released', async () => (await streamView('g711')).state === 'idle', 5_000);
});
