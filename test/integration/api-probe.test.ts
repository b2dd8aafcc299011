// go2rtc's probe form of GET /api/streams (?src=X&video&audio): the stream starts for the
// request, the answer lists the codecs its producers found (go2rtc's connection fields) and the
// probe among the consumers, then the probe leaves and the stream goes back to idle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera } from '../helpers/gst-camera.js';
import { waitFor } from '../helpers/wait.js';

interface Conn {
  id?: string;
  url?: string;
  format_name?: string;
  protocol?: string;
  remote_addr?: string;
  user_agent?: string;
  medias?: string[];
  receivers?: { codec: { codec_name: string; codec_type: string } }[];
  senders?: { codec: { codec_name: string } }[];
}
interface StreamJson {
  producers: Conn[];
  consumers: Conn[];
  state: string;
}

test('probe of a gst camera and of the demo: codecs found, the probe listed, then idle with no ffmpeg', { timeout: 90000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264-aac' });
  const app = await CamrelayProcess.start(
    testConfig({ cam: camera.url(), demo: 'ffmpeg:virtual?video=testsrc2&size=320x240&audio=sine#video=h264#audio=opus' }),
  );
  try {
    const plain = await app.json<StreamJson>('/api/streams?src=cam');
    assert.equal(plain.status, 200);
    assert.equal(plain.body.state, 'idle', 'without video/audio keys the stream is only shown');
    assert.equal(camera.connections(), 0);

    const probe = await app.json<StreamJson>('/api/streams?src=cam&video&audio', { headers: { 'user-agent': 'probe-test/1' } });
    assert.equal(probe.status, 200, JSON.stringify(probe.body));
    const p = probe.body.producers[0]!;
    assert.equal(p.url, camera.url());
    assert.equal(p.format_name, 'rtsp');
    assert.equal(p.protocol, 'rtsp+tcp');
    assert.equal(p.remote_addr, `127.0.0.1:${camera.port}`);
    assert.ok(p.medias?.includes('video, recvonly, H264'), JSON.stringify(p.medias));
    assert.ok(p.medias?.some((m) => /^audio, recvonly, AAC\/\d+/.test(m)), JSON.stringify(p.medias));
    assert.deepEqual(p.receivers?.map((r) => r.codec.codec_name).sort(), ['aac', 'h264']);
    assert.deepEqual(p.receivers?.find((r) => r.codec.codec_name === 'h264')?.codec, { codec_name: 'h264', codec_type: 'video' });
    const c = probe.body.consumers.find((x) => x.format_name === 'probe');
    assert.ok(c, JSON.stringify(probe.body.consumers));
    assert.equal(c.protocol, 'http');
    assert.match(c.remote_addr ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(c.user_agent, 'probe-test/1');
    assert.deepEqual(c.medias, ['video, sendonly, ANY', 'audio, sendonly, ANY']);
    await waitFor('camera released after the probe', async () => camera.openConnections() === 0 && (await app.json<StreamJson>('/api/streams?src=cam')).body.state === 'idle', 5000);

    const demo = await app.json<StreamJson>('/api/streams?src=demo&video=all&audio=all');
    assert.equal(demo.status, 200, JSON.stringify(demo.body));
    const d = demo.body.producers[0]!;
    assert.equal(d.format_name, 'ffmpeg');
    assert.ok(d.medias?.includes('video, recvonly, H264') && d.medias.includes('audio, recvonly, OPUS/48000/2'), JSON.stringify(d.medias));
    assert.deepEqual(d.receivers?.map((r) => r.codec.codec_name).sort(), ['h264', 'opus']);
    await waitFor('demo idle with no ffmpeg child', async () => app.children().length === 0 && (await app.json<StreamJson>('/api/streams?src=demo')).body.state === 'idle', 5000);

    assert.equal((await app.json('/api/streams?src=nope&video')).status, 404);
  } finally {
    await app.stop();
    await camera.stop();
  }
});

test('probe of a camera that refuses: 500 with the reason, nothing left attached', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ dead: 'rtsp://127.0.0.1:9/x' }, 'stream_defaults: { start_timeout: 2s }'));
  try {
    const r = await app.json<{ error?: string }>('/api/streams?src=dead&video');
    assert.equal(r.status, 500);
    assert.ok(r.body.error && r.body.error.length > 0);
    const after = await app.json<StreamJson>('/api/streams?src=dead');
    assert.deepEqual(after.body.consumers, []);
  } finally {
    await app.stop();
  }
});
