// Issue 15, "Chromium plays the HLS stream through hls.js": Debian's Chromium has no native HLS, so
// hls.js (a devDependency, test-only: camrelay's page never loads it) is injected into a page of
// camrelay's own origin and plays GET /api/stream.m3u8 of the demo, a gst H.264+AAC camera and,
// where Chromium's MSE takes hvc1, an H.265+AAC camera (else hls.js must refuse the codec). After
// hls.js is destroyed nothing fetches the session any more: it ends by its timeout, the stream
// goes idle and no HlsSession is left.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { waitFor } from '../helpers/wait.js';
import { HLS_SESSION_TIMEOUT_MS } from '../../src/outputs/hls/session.js';

const HLS_JS = path.resolve(import.meta.dirname, '../../node_modules/hls.js/dist/hls.min.js');
const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';
const HVC1 = 'video/mp4; codecs="hvc1.1.6.L153.B0"';
const skipCam = chromiumSkip || (cameraCanRun('h264-aac') ? false : 'gst-rtsp-server with x264enc/voaacenc not available');
const skipHevc = chromiumSkip || (cameraCanRun('h265-aac') ? false : 'gst-rtsp-server with x265enc/voaacenc not available');

let app: CamrelayProcess | undefined;
let browser: Chromium | undefined;
let camera: GstCamera | undefined;
let hevc: GstCamera | undefined;

before(async () => {
  if (chromiumSkip) return;
  if (!skipCam) camera = await GstCamera.start({ pipeline: 'h264-aac' });
  if (!skipHevc) hevc = await GstCamera.start({ pipeline: 'h265-aac' });
  app = await CamrelayProcess.start(testConfig({ demo: DEMO, ...(camera && { cam: camera.url() }), ...(hevc && { hevc: hevc.url() }) }));
  browser = await Chromium.launch();
});

after(async () => {
  await browser?.close();
  if (app) assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
  await hevc?.stop();
});

interface HlsError {
  type: string;
  details: string;
  fatal: boolean;
  url?: string;
  reason?: string;
  error?: string;
  response?: { code: number; text: string };
}

interface Sample {
  width: number;
  time: number;
  frames: number;
  /** Chromium's count of audio bytes decoded: audio really plays. */
  audioBytes: number;
  /** SourceBuffer name → codec, from Hls.Events.BUFFER_CODECS ('audiovideo' for muxed fMP4). */
  codecs: Record<string, string> | null;
  errors: HlsError[];
  /** ms from loadSource to the first 'playing', or -1 before it. */
  firstPlayingMs: number;
  /** hls.js's distance of the playhead from the live edge (s). */
  latency: number;
  playError: string;
}

// Browser-side code as text: the project typechecks without the DOM library.
const start = (src: string) => `(() => {
  const s = { errors: [], codecs: null, t0: 0, playingAt: -1, playError: '' };
  const v = document.createElement('video');
  v.muted = true;
  document.body.append(v);
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_, d) => s.errors.push({
    type: d.type, details: d.details, fatal: !!d.fatal, url: d.url ?? d.frag?.url ?? d.context?.url,
    reason: d.reason, error: d.error ? String(d.error) : undefined,
    response: d.response ? { code: d.response.code, text: String(d.response.text ?? '') } : undefined,
  }));
  hls.on(Hls.Events.BUFFER_CODECS, (_, d) => {
    s.codecs = Object.fromEntries(['audio', 'video', 'audiovideo'].filter((k) => d[k]).map((k) => [k, d[k].codec]));
  });
  v.addEventListener('playing', () => { if (s.playingAt < 0) s.playingAt = performance.now(); });
  window.__hls = { hls, v, s };
  s.t0 = performance.now();
  hls.loadSource(${JSON.stringify(src)});
  hls.attachMedia(v);
  v.play().catch((e) => { s.playError = String(e); });
})()`;

const SAMPLE = `(() => {
  const { hls, v, s } = window.__hls;
  return { width: v.videoWidth, time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames,
    audioBytes: v.webkitAudioDecodedByteCount ?? 0, codecs: s.codecs, errors: s.errors,
    firstPlayingMs: s.playingAt < 0 ? -1 : Math.round(s.playingAt - s.t0), latency: hls.latency, playError: s.playError };
})()`;

/** A page of camrelay's own origin (no CORS question) with hls.js in it, playing `src`. */
async function openHls(src: string, query = ''): Promise<{ page: Page; failed: string[] }> {
  const page = await browser!.page();
  // Which request failed, for the report when hls.js gives up.
  const failed: string[] = [];
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => failed.push(`${r.failure()?.errorText ?? 'failed'} ${r.url()}`));
  await page.goto(`${app!.base}/links.html`);
  await page.addScriptTag({ path: HLS_JS });
  assert.equal(await page.evaluate<boolean>('Hls.isSupported()'), true, 'hls.js has MSE here');
  await page.evaluate(start(`/api/stream.m3u8?src=${encodeURIComponent(src)}${query}`));
  return { page, failed };
}

const fatal = (s: Sample) => s.errors.filter((e) => e.fatal);

/** Waits for a picture and then 2 s of playback, with no fatal hls.js error on the way. */
async function waitPlayed(page: Page, failed: string[], ms: number): Promise<{ first: Sample; last: Sample }> {
  let first: Sample | undefined;
  let last: Sample | undefined;
  try {
    const done = await waitFor(
      '2 s of hls.js playback',
      async () => {
        const s = (last = await page.evaluate<Sample>(SAMPLE));
        if (fatal(s).length) throw new Error(`hls.js fatal error: ${JSON.stringify(fatal(s))}`);
        if (s.width === 0 || s.firstPlayingMs < 0) return undefined;
        first ??= s;
        return s.time >= first.time + 2 && s.frames > first.frames ? s : undefined;
      },
      ms,
      100,
    );
    return { first: first!, last: done };
  } catch (e) {
    // A fatal error ends the wait at once: stop polling and say everything hls.js and the network said.
    throw new Error(`${(e as Error).message}; last: ${JSON.stringify(last)}; failed requests: ${JSON.stringify(failed)}`);
  }
}

interface StreamInfo {
  state: string;
  consumers: { format_name?: string }[];
}
const streamOf = async (name: string): Promise<StreamInfo> => (await app!.json<Record<string, StreamInfo>>('/api/streams')).body[name]!;

/** hls.js destroyed and its page closed: nothing fetches the session, which ends by its timeout. */
async function stopAndWaitIdle(page: Page, name: string): Promise<void> {
  // Not idle by accident: the session is still there, a viewer of the stream.
  assert.ok((await streamOf(name)).consumers.some((c) => c.format_name === 'hls/fmp4'), `${name} has its HLS viewer before hls.js goes`);
  await page.evaluate('window.__hls.hls.destroy()');
  await page.close();
  const stopped = Date.now();
  await waitFor(`${name} idle`, async () => (await streamOf(name)).state === 'idle', HLS_SESSION_TIMEOUT_MS + 3000, 100);
  await waitFor('no HlsSession left', async () => (await app!.objects())['HlsSession'] === 0, 1000, 50);
  console.log(`# hls.js: ${name} idle ${Date.now() - stopped} ms after hls.js was destroyed (session timeout ${HLS_SESSION_TIMEOUT_MS} ms)`);
}

/** hls.js plays `name` (picture, 2 s of time, audio decoded), then the session ends by its timeout. */
async function playsWithAudio(name: string, query = ''): Promise<void> {
  const { page, failed } = await openHls(name, query);
  try {
    const { first, last } = await waitPlayed(page, failed, 30_000);
    assert.ok(last.width > 0);
    assert.ok(last.time - first.time >= 2, `currentTime ${first.time} → ${last.time}`);
    assert.deepEqual(fatal(last), []);
    assert.equal(last.playError, '', 'play() resolved');
    // Muxed fMP4 (one init with both tracks) makes hls.js create one 'audiovideo' SourceBuffer.
    const audioCodec = Object.entries(last.codecs ?? {}).find(([k, c]) => k === 'audio' || (k === 'audiovideo' && /mp4a|opus/.test(c)));
    assert.ok(audioCodec, `an audio SourceBuffer: ${JSON.stringify(last.codecs)}`);
    assert.ok(last.audioBytes > 0, 'Chromium decodes the audio');
    console.log(`# hls.js: ${name}: first 'playing' ${last.firstPlayingMs} ms after loadSource; latency ${last.latency.toFixed(2)} s from the live edge; ` +
      `${last.width}px wide; buffers ${JSON.stringify(last.codecs)}; audio bytes decoded ${last.audioBytes}; non-fatal errors ${JSON.stringify(last.errors.map((e) => e.details))}`);
  } catch (e) {
    await page.close();
    throw e;
  }
  await stopAndWaitIdle(page, name);
}

test('hls.js plays the demo (ffmpeg test pattern, H.264 and AAC made of its Opus) with its audio', { timeout: 60_000, skip: chromiumSkip }, async () => {
  await playsWithAudio('demo');
});

test('hls.js plays a gst-rtsp-server H.264+AAC camera with its audio', { timeout: 60_000, skip: skipCam }, async () => {
  await playsWithAudio('cam');
  await waitFor('the camera released', () => camera!.openConnections() === 0, 2000, 50);
});

test('an H.265+AAC camera: hls.js plays it where Chromium\'s MSE takes hvc1, else says the codec is unsupported, and plays it with &video=h264&audio through the automatic transcode', { timeout: 60_000, skip: skipHevc }, async () => {
  const page0 = await browser!.page();
  await page0.goto(`${app!.base}/links.html`);
  const hvc1 = await page0.evaluate<boolean>(`MediaSource.isTypeSupported(${JSON.stringify(HVC1)})`);
  await page0.close();
  console.log(`# hls.js: MediaSource.isTypeSupported('${HVC1}') = ${hvc1}`);
  if (hvc1) {
    await playsWithAudio('hevc');
    return;
  }
  // The master playlist's CODECS names hvc1: hls.js finds no level it can play and says so, fatally.
  const { page, failed } = await openHls('hevc');
  let last: Sample | undefined;
  try {
    last = await waitFor('hls.js refusing the codec', async () => {
      const s = await page.evaluate<Sample>(SAMPLE);
      return fatal(s).length ? s : undefined;
    }, 25_000, 100);
  } catch (e) {
    await page.close();
    throw new Error(`${(e as Error).message}; failed requests: ${JSON.stringify(failed)}`);
  }
  assert.deepEqual(fatal(last).map((e) => `${e.type}/${e.details}`), ['mediaError/manifestIncompatibleCodecsError'], JSON.stringify(last.errors));
  assert.equal(last.width, 0, 'no picture');
  console.log(`# hls.js: hevc refused as unsupported: ${JSON.stringify(fatal(last)[0])}`);
  await stopAndWaitIdle(page, 'hevc');
  // go2rtc's video=/audio filters ask for H.264 and any audio: the stream's automatic transcode makes it, and hls.js plays.
  await playsWithAudio('hevc', '&video=h264&audio');
  await waitFor('the camera released', () => hevc!.openConnections() === 0, 2000, 50);
});
