// Issue 13 item 4: http(s) and rtmp(s) cameras, configured through the API as Home Assistant does
// it, play over WebRTC: an MJPEG-over-HTTP camera is encoded to H.264, an RTMP camera's H.264 is
// copied (and its AAC becomes Opus through Home Assistant's second source); /api/schemes lists them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { HlsCamera, MjpegHttpCamera, RtmpCamera } from '../helpers/http-rtmp-cameras.js';
import { request } from '../helpers/http.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';

const q = (params: [string, string][]) => params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');

test('GET /api/schemes lists http, https, rtmp and rtmps next to rtsp and ffmpeg', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({}));
  try {
    const r = await app.json<string[]>('/api/schemes');
    assert.equal(r.status, 200);
    for (const s of ['rtsp', 'rtsps', 'ffmpeg', 'http', 'https', 'rtmp', 'rtmps']) assert.ok(r.body.includes(s), s);
  } finally {
    await app.stop();
  }
});

for (const form of ['plain', 'ffmpeg:'] as const) {
  test(`an MJPEG-over-HTTP camera (${form} source from the API) plays over WebRTC as H.264`, { timeout: 60000 }, async () => {
    const camera = await MjpegHttpCamera.start();
    const app = await CamrelayProcess.start(testConfig({}));
    const viewer = new Viewer();
    try {
      const src = form === 'plain' ? camera.url() : `ffmpeg:${camera.url()}`;
      const put = await app.json<{ error?: string } | undefined>(`/api/streams?${q([['name', 'garage'], ['src', src], ['src', 'ffmpeg:garage#audio=opus#query=log_level=debug']])}`, { method: 'PUT' });
      assert.equal(put.status, 200, put.body?.error);
      await viewer.connect(app.base, 'garage', 'sdp');
      await waitFor('the viewer gets an H.264 keyframe with SPS and PPS', () => viewer.sawKeyframeWithParams(), 30000);
      const info = (await app.json<{ producers: { url: string }[] }>('/api/streams?src=garage')).body;
      assert.equal(info.producers[0]!.url, src);
      const spawned = app.logs.find((l) => l.msg === 'spawning ffmpeg' && Array.isArray(l.args) && (l.args as string[]).includes(camera.url()));
      assert.ok(spawned, 'ffmpeg reads the camera');
      const args = spawned.args as string[];
      assert.equal(args[args.indexOf('-c:v') + 1], 'libx264', 'MJPEG is encoded to H.264');
      assert.equal(args[args.indexOf('-protocol_whitelist') + 1], 'http,https,tls,tcp,crypto,httpproxy');
      // Home Assistant's snapshots of that camera.
      const jpeg = await request(`${app.base}/api/frame.jpeg?src=garage`);
      assert.equal(jpeg.status, 200);
      assert.equal(jpeg.headers['content-type'], 'image/jpeg');
    } finally {
      await viewer.close().catch(() => undefined);
      await app.stop();
      await camera.close();
    }
  });
}

test('an RTMP camera (rtmp:// from the API) plays over WebRTC: H.264 copied, AAC made Opus by the second source', { timeout: 60000 }, async () => {
  const camera = await RtmpCamera.start();
  const app = await CamrelayProcess.start(testConfig({}, 'log: { level: debug }'));
  const viewer = new Viewer();
  try {
    const put = await app.json<{ error?: string } | undefined>(`/api/streams?${q([['name', 'drive'], ['src', camera.url()], ['src', 'ffmpeg:drive#audio=opus']])}`, { method: 'PUT' });
    assert.equal(put.status, 200, put.body?.error);
    await viewer.connect(app.base, 'drive', 'sdp');
    await waitFor('the viewer gets an H.264 keyframe and Opus audio', () => viewer.sawKeyframeWithParams() && viewer.audio.length > 20, 30000);
    const spawned = app.logs.find((l) => l.msg === 'spawning ffmpeg' && Array.isArray(l.args) && (l.args as string[]).includes(camera.url()));
    assert.ok(spawned, 'ffmpeg reads the camera');
    const args = spawned.args as string[];
    assert.ok(args.includes('-rw_timeout') && !args.includes('-timeout'), 'an rtmp input gets -rw_timeout, never -timeout (which makes ffmpeg listen)');
    assert.equal(args[args.indexOf('-protocol_whitelist') + 1], 'rtmp,rtmps,tls,tcp');
    assert.ok(!args.includes('libx264'), 'H.264 is copied');
  } finally {
    await viewer.close().catch(() => undefined);
    await app.stop();
    await camera.close();
  }
});

test('a refused http or rtmp camera fails the viewer at once with the reason (the probe says it too)', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({}));
  try {
    for (const src of ['http://127.0.0.1:9/x.mjpg', 'ffmpeg:https://127.0.0.1:9/live.m3u8', 'rtmp://127.0.0.1:9/live/x']) {
      assert.equal((await app.json(`/api/streams?${q([['name', 'dead'], ['src', src]])}`, { method: 'PUT' })).status, 200, src);
      const viewer = new Viewer();
      const t0 = Date.now();
      try {
        await assert.rejects(viewer.connect(app.base, 'dead', 'sdp'), /Connection refused/, src);
        assert.ok(Date.now() - t0 < 2000, `${src}: error after ${Date.now() - t0} ms`);
      } finally {
        await viewer.close().catch(() => undefined);
      }
    }
  } finally {
    await app.stop();
  }
});

test('an http camera that never sends a frame: deleting its stream while ffprobe waits ends ffprobe and leaves nothing', { timeout: 60000 }, async () => {
  const sockets = new Set<import('node:net').Socket>();
  const silent = (await import('node:http')).createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=x' });
    res.flushHeaders();
  });
  silent.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(silent.address() as import('node:net').AddressInfo).port}/x.mjpg`;
  const app = await CamrelayProcess.start(testConfig({}));
  const viewer = new Viewer();
  try {
    assert.equal((await app.json(`/api/streams?${q([['name', 'silent'], ['src', url]])}`, { method: 'PUT' })).status, 200);
    const connecting = viewer.connect(app.base, 'silent', 'sdp').catch((e: unknown) => e);
    await waitFor('ffprobe runs against the camera', () => app.children().length === 1 && sockets.size > 0, 10000);
    assert.equal((await app.json(`/api/streams?${q([['src', 'silent']])}`, { method: 'DELETE' })).status, 200);
    await waitFor('ffprobe is gone', () => app.children().length === 0, 3000);
    assert.ok((await connecting) instanceof Error, 'the viewer gets an error, not video');
    await waitFor('no source object left', async () => {
      const o = await app.objects();
      return !o.ProbedFfmpegSource && !o.FfmpegSource && !o.ChildProcess;
    }, 3000);
  } finally {
    await viewer.close().catch(() => undefined);
    await app.stop();
    silent.closeAllConnections();
    silent.close();
  }
});

test('an HLS camera (ffmpeg:http://….m3u8, Home Assistant\'s generic camera) plays over WebRTC: H.264 copied, its ADTS AAC encoded to Opus', { timeout: 60000 }, async () => {
  const camera = await HlsCamera.start();
  const app = await CamrelayProcess.start(testConfig({}));
  const viewer = new Viewer();
  try {
    const src = `ffmpeg:${camera.url()}`;
    const put = await app.json<{ error?: string } | undefined>(`/api/streams?${q([['name', 'generic'], ['src', src], ['src', 'ffmpeg:generic#audio=opus#query=log_level=debug']])}`, { method: 'PUT' });
    assert.equal(put.status, 200, put.body?.error);
    await viewer.connect(app.base, 'generic', 'sdp');
    await waitFor('the viewer gets an H.264 keyframe and Opus audio', () => viewer.sawKeyframeWithParams() && viewer.audio.length > 20, 30000);
    const spawned = app.logs.find((l) => l.msg === 'spawning ffmpeg' && Array.isArray(l.args) && (l.args as string[]).includes(camera.url()));
    assert.ok(spawned, 'ffmpeg reads the playlist');
    assert.ok(!(spawned.args as string[]).includes('libx264'), 'H.264 is copied');

    // Home Assistant's generic camera with FLIP: #audio=copy on HLS is AAC made anew (ADTS cannot be copied into RTSP).
    const flipped = `ffmpeg:${camera.url()}#video=h264#audio=copy#raw=-vf vflip`;
    assert.equal((await app.json(`/api/streams?${q([['name', 'flipped'], ['src', flipped], ['src', 'ffmpeg:flipped#audio=opus#query=log_level=debug']])}`, { method: 'PUT' })).status, 200);
    const second = new Viewer();
    try {
      await second.connect(app.base, 'flipped', 'sdp');
      await waitFor('the flipped stream gives H.264 and Opus', () => second.sawKeyframeWithParams() && second.audio.length > 20, 30000);
    } finally {
      await second.close().catch(() => undefined);
    }
  } finally {
    await viewer.close().catch(() => undefined);
    await app.stop();
    await camera.close();
  }
});
