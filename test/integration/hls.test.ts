// Issue 15, HLS: GET /api/stream.m3u8 of a real camrelay read by ffprobe and ffmpeg (the demo, a
// gst-rtsp-server H.264+AAC camera, an H.265+AAC one: hevc with tag hvc1), played by headless
// Chromium natively when it says it can, and a session that nothing fetches any more ends within
// HLS_SESSION_TIMEOUT_MS, releasing the camera.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import type { Page } from 'playwright-core';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { HLS_SESSION_TIMEOUT_MS } from '../../src/outputs/hls/session.js';
import { runTool as run } from '../helpers/run-tool.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';
const skip = cameraCanRun('h264-aac') ? false : 'gst-rtsp-server with x264enc/voaacenc not available';
const skipHevc = cameraCanRun('h265-aac') ? false : 'gst-rtsp-server with x265enc/voaacenc not available';
let app: CamrelayProcess;
let camera: GstCamera | undefined;
let hevc: GstCamera | undefined;
const base = () => `http://127.0.0.1:${app.port}`;

before(async () => {
  if (!skip) camera = await GstCamera.start({ pipeline: 'h264-aac' });
  if (!skipHevc) hevc = await GstCamera.start({ pipeline: 'h265-aac' });
  app = await CamrelayProcess.start(testConfig({ demo: DEMO, ...(camera && { cam: camera.url() }), ...(hevc && { hevc: hevc.url() }) }));
});

after(async () => {
  assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
  await hevc?.stop();
});

interface Probed {
  streams: { codec_type: string; codec_name: string; codec_tag_string: string; width?: number }[];
}

async function ffprobe(url: string): Promise<Probed> {
  const r = await run('/usr/bin/ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', url], 30_000);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Probed;
}

/** ffmpeg decodes `seconds` of the playlist: frames of each kind, and its errors. */
async function decode(url: string, seconds: number): Promise<{ video: number; audio: number; stderr: string }> {
  const r = await run('/usr/bin/ffmpeg', ['-v', 'error', '-stats_period', '100', '-i', url, '-t', String(seconds), '-map', '0', '-f', 'framemd5', '-'], 40_000);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => /^\d+,/.test(l));
  return { video: lines.filter((l) => l.startsWith('0,')).length, audio: lines.filter((l) => l.startsWith('1,')).length, stderr: r.stderr.trim() };
}

const objects = async (): Promise<Record<string, number>> => JSON.parse((await request(`${base()}/api/debug/objects`)).text) as Record<string, number>;
const streamOf = async (name: string): Promise<{ state: string; consumers: { format_name: string; protocol?: string }[] }> =>
  (JSON.parse((await request(`${base()}/api/streams`)).text) as Record<string, { state: string; consumers: { format_name: string }[] }>)[name]!;

test('the demo: a master playlist as go2rtc\'s, a live media playlist of keyframe-cut fMP4 segments; ffprobe reads H.264, and AAC made of its Opus (transcode: auto)', { timeout: 90_000 }, async () => {
  const master = await request(`${base()}/api/stream.m3u8?src=demo`);
  assert.equal(master.status, 200);
  assert.match(String(master.headers['content-type']), /^application\/vnd\.apple\.mpegurl/);
  const m = /^#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=192000,CODECS="avc1\.[0-9A-F]{6},mp4a\.40\.2"\nhls\/playlist\.m3u8\?id=([0-9A-Za-z]{16})\n$/.exec(master.text);
  assert.ok(m, master.text);
  const id = m[1]!;
  const media = await request(`${base()}/api/hls/playlist.m3u8?id=${id}`);
  assert.equal(media.status, 200);
  assert.match(media.text, /^#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:\d+\n#EXT-X-MEDIA-SEQUENCE:\d+\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI="init\.mp4\?id=\w+"\n#EXTINF:\d+\.\d{3},\nsegment\.m4s\?id=\w+&n=\d+\n/);
  const init = await request(`${base()}/api/hls/init.mp4?id=${id}`);
  assert.equal(init.status, 200);
  assert.equal(init.headers['content-type'], 'video/mp4');
  const n = /n=(\d+)/.exec(media.text)![1];
  const seg = await request(`${base()}/api/hls/segment.m4s?id=${id}&n=${n}`);
  assert.equal(seg.status, 200);
  assert.equal(seg.headers['content-type'], 'video/iso.segment');
  assert.equal((await request(`${base()}/api/hls/segment.m4s?id=${id}&n=999999`)).status, 404);
  assert.equal((await request(`${base()}/api/hls/playlist.m3u8?id=nope`)).status, 404);
  assert.equal((await request(`${base()}/api/stream.m3u8?src=nope`)).status, 404);
  const view = await streamOf('demo');
  assert.ok(view.consumers.some((c) => c.format_name === 'hls/fmp4' && c.protocol === 'http'), JSON.stringify(view.consumers));
  assert.ok((await objects())['HlsSession']! >= 1);

  const p = await ffprobe(`${base()}/api/stream.m3u8?src=demo`);
  // go2rtc's default HLS takes AAC only: the demo's Opus comes through the automatic transcode.
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}:${s.codec_tag_string}`), ['video:h264:avc1', 'audio:aac:mp4a']);
  const d = await decode(`${base()}/api/stream.m3u8?src=demo&mp4=all`, 3);
  assert.ok(d.video >= 50 && d.audio >= 50, JSON.stringify(d));
  assert.equal(d.stderr, '', 'decodes without errors');
  await waitFor('every session ended', async () => (await objects())['HlsSession'] === 0, HLS_SESSION_TIMEOUT_MS + 3000, 100);
  await waitFor('the demo stopped', async () => (await streamOf('demo')).state === 'idle', 5000, 100);
});

test('a gst H.264+AAC camera: ffprobe reads h264/avc1 and aac/mp4a; ffmpeg decodes both', { timeout: 90_000, skip }, async () => {
  const p = await ffprobe(`${base()}/api/stream.m3u8?src=cam`);
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}:${s.codec_tag_string}`), ['video:h264:avc1', 'audio:aac:mp4a']);
  const d = await decode(`${base()}/api/stream.m3u8?src=cam&mp4`, 3);
  assert.ok(d.video >= 50 && d.audio >= 100, JSON.stringify(d));
  assert.equal(d.stderr, '', 'decodes without errors');
});

test('a gst H.265+AAC camera: ffprobe reads hevc with tag hvc1 and aac; ffmpeg decodes both', { timeout: 90_000, skip: skipHevc }, async () => {
  const p = await ffprobe(`${base()}/api/stream.m3u8?src=hevc`);
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}:${s.codec_tag_string}`), ['video:hevc:hvc1', 'audio:aac:mp4a']);
  const d = await decode(`${base()}/api/stream.m3u8?src=hevc`, 3);
  assert.ok(d.video >= 50 && d.audio >= 100, JSON.stringify(d));
  assert.equal(d.stderr, '', 'decodes without errors');
});

test(`a client that stops fetching: its session ends ${HLS_SESSION_TIMEOUT_MS} ms after its last request and the camera is released`, { timeout: 60_000, skip }, async () => {
  await waitFor('the camera idle', () => camera!.openConnections() === 0, HLS_SESSION_TIMEOUT_MS + 3000, 50);
  const master = await request(`${base()}/api/stream.m3u8?src=cam`);
  const id = /id=(\w+)/.exec(master.text)![1]!;
  const media = await request(`${base()}/api/hls/playlist.m3u8?id=${id}`);
  const n = /n=(\d+)/.exec(media.text)![1];
  assert.equal((await request(`${base()}/api/hls/segment.m4s?id=${id}&n=${n}`)).status, 200);
  const last = Date.now();
  assert.equal(camera!.openConnections(), 1);
  assert.deepEqual((await streamOf('cam')).consumers.map((c) => c.format_name), ['hls/fmp4']);
  await waitFor('the camera released', () => camera!.openConnections() === 0, HLS_SESSION_TIMEOUT_MS + 2000, 20);
  const after = Date.now() - last;
  assert.ok(after >= HLS_SESSION_TIMEOUT_MS - 200, `released ${after} ms after the last request: not before the timeout`);
  assert.equal((await request(`${base()}/api/hls/playlist.m3u8?id=${id}`)).status, 404, 'the session is gone');
  assert.equal((await objects())['HlsSession'], 0);
  assert.equal((await objects())['Fmp4Muxer'], 0);
});

/** Plays `src` in a <video> (native HLS): its size and time once past 1 s, whether audio decoded, or why not. */
async function play(page: Page, src: string): Promise<{ width?: number; time?: number; audioBytes?: number; error?: string }> {
  return page.evaluate(async (url) => {
    const v = document.createElement('video') as HTMLVideoElement & { webkitAudioDecodedByteCount?: number };
    v.muted = true;
    v.autoplay = true;
    document.body.append(v);
    v.src = url;
    const t0 = performance.now();
    // Polls the element (the page has no event for "past 1 s"), bounded by 30 s.
    while (performance.now() - t0 < 30_000) {
      if (v.videoWidth > 0 && v.currentTime > 1) return { width: v.videoWidth, time: v.currentTime, audioBytes: v.webkitAudioDecodedByteCount ?? -1 };
      if (v.error) return { error: `${v.error.code} ${v.error.message}` };
      await new Promise((ok) => setTimeout(ok, 100));
    }
    return { error: `not playing: readyState ${v.readyState}, networkState ${v.networkState}, currentTime ${v.currentTime}` };
  }, src);
}

test('headless Chromium plays the demo and the H.264+AAC camera natively (it says it can); closed, the camera is released within the timeout', { timeout: 120_000, skip: chromiumSkip }, async (t) => {
  const browser = await Chromium.launch();
  let closed = false;
  try {
    const page = await browser.page();
    await page.goto(`${base()}/api/streams`);
    const can = await page.evaluate(() => document.createElement('video').canPlayType('application/vnd.apple.mpegurl'));
    if (!can) {
      t.skip(`this Chromium's canPlayType('application/vnd.apple.mpegurl') is '' (no native HLS); hls.js is not installed`);
      return;
    }
    const demo = await play(page, `${base()}/api/stream.m3u8?src=demo`);
    assert.equal(demo.error, undefined, JSON.stringify(demo));
    assert.equal(demo.width, 320);
    if (skip) return;
    const cam = await play(page, `${base()}/api/stream.m3u8?src=cam`);
    assert.equal(cam.error, undefined, JSON.stringify(cam));
    assert.equal(cam.width, 320);
    assert.ok(cam.audioBytes! > 0, `audio decoded: ${cam.audioBytes}`);
    assert.equal(camera!.openConnections(), 1);
    await browser.close();
    closed = true;
    const t0 = Date.now();
    await waitFor('the camera released', () => camera!.openConnections() === 0, HLS_SESSION_TIMEOUT_MS + 2000, 20);
    assert.ok(Date.now() - t0 <= HLS_SESSION_TIMEOUT_MS + 2000);
  } finally {
    if (!closed) await browser.close();
  }
});
