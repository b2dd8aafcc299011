// Issue 4: a scripted client making exactly Home Assistant's calls, in order, against a real
// RTSP camera with H.264 + AAC (gst-rtsp-server). The second source transcodes this stream's AAC
// to Opus; the WebRTC peer gets H.264 from the camera and Opus from the transcode, and keeps
// getting them after the signalling socket closed (as go2rtc's player closes it).
import { test } from 'node:test';
import { SNAPSHOT_DECODER_KEEP_MS } from '../../src/outputs/snapshot-pool.js';
import { readFileSync, statSync } from 'node:fs';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera } from '../helpers/gst-camera.js';
import { Signalling } from '../helpers/signalling.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

test('Home Assistant\'s calls in order: camera video + transcoded Opus over WebRTC after the socket closed', { timeout: 90000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264-aac' });
  const app = await CamrelayProcess.start(testConfig({}));
  const viewer = new Viewer();
  try {
    const api = (await app.json<{ version: string }>('/api')).body;
    assert.equal(api.version, '1.9.14');
    const schemes = (await app.json<string[]>('/api/schemes')).body;
    assert.ok(schemes.includes('rtsp') && schemes.includes('ffmpeg'));
    assert.deepEqual((await app.json('/api/streams')).body, {});

    const name = 'camera.front_door';
    const src = [camera.url(), `ffmpeg:${name}#audio=opus#query=log_level=debug`];
    const put = await request(`${app.base}/api/streams?name=${encodeURIComponent(name)}&${src.map((s) => `src=${encodeURIComponent(s)}`).join('&')}`, { method: 'PUT' });
    assert.equal(put.status, 200, put.text);
    const streams = (await app.json<Record<string, { producers: { url: string }[] }>>('/api/streams')).body;
    assert.deepEqual(streams[name]!.producers.map((p) => p.url), src);
    assert.equal(app.children().length, 0, 'nothing runs before a viewer');

    // WebRTC over the WebSocket, as Home Assistant's frontend does it through HA.
    const sig = await new Signalling(app.port, name).open();
    const lines: string[] = [];
    const sdp = await viewer.offerTrickle((c) => {
      if (c) lines.push(c);
    });
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp, ice_servers: [] } });
    const answer = await sig.next((m) => m.type === 'webrtc' && (m.value as { type?: string }).type === 'answer', 20000);
    const answerSdp = (answer.value as { sdp: string }).sdp;
    const audioSection = answerSdp.split(/\r\n(?=m=)/).find((m) => m.startsWith('m=audio')) ?? '';
    assert.match(audioSection, /a=sendonly/, 'audio is sent');
    assert.match(audioSection, /a=rtpmap:\d+ opus\/48000\/2/i, 'Opus is in the answer although the camera sends AAC');
    assert.match(answerSdp, /a=rtpmap:\d+ H264\/90000/);
    await viewer.answer(answerSdp);
    for (const l of lines) sig.send({ type: 'webrtc/candidate', value: l });
    await sig.next((m) => m.type === 'webrtc/candidate', 5000);
    // Home Assistant keeps its socket until the browser ends the session, but go2rtc's player
    // (dashboard cards) closes it once WebRTC plays: the session must outlive the socket.
    await sig.close();
    const after = { video: viewer.video.length, audio: viewer.audio.length };
    await waitFor('H.264 and Opus after the socket closed', () => viewer.video.length > after.video + 30 && viewer.audio.length > after.audio + 20 && viewer.sawKeyframeWithParams(), 15000);
    assert.equal(app.children().length, 1, 'one ffmpeg: the audio transcode; the camera is pulled natively');
    assert.equal(camera.openConnections(), 1, 'the camera sees one connection: the transcode reads the stream back from camrelay');

    // Snapshots while live come from the held keyframe.
    const jpeg = await request(`${app.base}/api/frame.jpeg?src=${encodeURIComponent(name)}&width=320`);
    assert.equal(jpeg.status, 200);
    assert.equal(jpeg.headers['content-type'], 'image/jpeg');

    // The browser goes away (werift sends nothing): the disconnect timeout ends the session, the
    // camera gets its TEARDOWN and the transcode exits.
    const mark = camera.events.length;
    await viewer.close();
    await waitFor('camera released and the transcode gone', () => app.children().length <= 1 && camera.openConnections() === 0, 5000);
    // What may remain is the snapshot's decoder, kept for the next poll: it goes after its quiet period.
    await waitFor('the snapshot decoder gone', () => app.children().length === 0, SNAPSHOT_DECODER_KEEP_MS + 3000);
    assert.ok(camera.requests('TEARDOWN').length >= 1 && camera.events.length > mark);
  } finally {
    await viewer.close();
    await app.stop();
    await camera.stop();
  }
});

/**
 * Home Assistant's _update_stream_source: GET /api/streams, then PUT [source, ffmpeg:<name>#…]
 * unless some producers[].url equals the source. Returns whether it PUT.
 */
async function haUpdateStreamSource(app: CamrelayProcess, name: string, source: string): Promise<boolean> {
  const streams = (await app.json<Record<string, { producers: { url: string }[] }>>('/api/streams')).body;
  if (streams[name]?.producers.some((p) => p.url === source)) return false;
  // URLSearchParams encodes as yarl does (space as +, # as %23), repeated src.
  const qs = new URLSearchParams([['name', name], ['src', source], ['src', `ffmpeg:${name}#audio=opus#query=log_level=debug`]]);
  const put = await request(`${app.base}/api/streams?${qs.toString()}`, { method: 'PUT' });
  assert.equal(put.status, 200, put.text);
  return true;
}

test('Home Assistant re-registering a password camera 5 times while a viewer watches: no write, no restart, no gap', { timeout: 120000 }, async () => {
  const creds = { user: 'admin', password: 's3cr3t-Pw' };
  const camera = await GstCamera.start({ pipeline: 'h264-aac', auth: { method: 'digest', ...creds } });
  const app = await CamrelayProcess.start(testConfig({}));
  const viewer = new Viewer();
  const arrivals: number[] = [];
  viewer.pc.onTrack.subscribe((t) => {
    if (t.kind === 'video') t.onReceiveRtp.subscribe(() => arrivals.push(performance.now()));
  });
  let sig: Signalling | undefined;
  try {
    const name = 'camera.porch';
    const source = camera.url(creds);
    assert.equal(await haUpdateStreamSource(app, name, source), true, 'a missing stream is PUT');

    // The viewer, through Home Assistant's signalling socket (kept open for the whole session).
    sig = await new Signalling(app.port, name).open();
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp: await viewer.offer(), ice_servers: [] } });
    const answer = await sig.next((m) => m.type === 'webrtc', 20000);
    await viewer.answer((answer.value as { sdp: string }).sdp);
    await waitFor('video flowing', () => viewer.video.length > 50 && viewer.sawKeyframeWithParams(), 20000);
    const consumerIds = async () => ((await app.json<Record<string, { consumers: { id: string }[] }>>('/api/streams')).body[name]?.consumers ?? []).map((c) => c.id).sort();
    const sessionBefore = await consumerIds();
    const plays = camera.requests('PLAY').length;
    const bytes = readFileSync(app.configFile);
    const mtime = statSync(app.configFile).mtimeMs;
    const from = performance.now();

    for (let i = 0; i < 5; i++) {
      // The listed URL is masked, so Home Assistant never finds its source and PUTs every time.
      assert.equal(await haUpdateStreamSource(app, name, source), true, `offer/snapshot ${i + 1} PUTs again`);
      const n = viewer.video.length;
      await waitFor(`video after PUT ${i + 1}`, () => viewer.video.length > n + 10, 5000);
    }
    const n = viewer.video.length;
    await waitFor('video after the last PUT', () => viewer.video.length > n + 50, 10000);

    assert.deepEqual(readFileSync(app.configFile), bytes, 'config.yaml bytes unchanged');
    assert.equal(statSync(app.configFile).mtimeMs, mtime, 'config.yaml not written (mtime)');
    assert.equal(camera.requests('PLAY').length, plays, 'the camera was not asked to PLAY again');
    assert.equal(camera.openConnections(), 1, 'one connection to the camera throughout');
    assert.deepEqual(await consumerIds(), sessionBefore, 'the same WebRTC session');
    assert.equal(viewer.pc.connectionState, 'connected');
    const window = arrivals.filter((t) => t >= from);
    let gap = 0;
    for (let i = 1; i < window.length; i++) gap = Math.max(gap, window[i]! - window[i - 1]!);
    assert.ok(gap < 500, `longest gap in received video RTP ${gap.toFixed(0)} ms`);

    const listed = JSON.stringify((await app.json('/api/streams')).body);
    assert.ok(!listed.includes(creds.password), 'the password is never listed');
    assert.ok(!JSON.stringify(app.logs).includes(creds.password), 'nor logged');
  } finally {
    await sig?.close();
    await viewer.close();
    await app.stop();
    await camera.stop();
  }
});
