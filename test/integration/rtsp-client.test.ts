// Issue 3, deliverable 1: the native RTSP client against a real camera (GStreamer's
// gst-rtsp-server), through camrelay as a user runs it and through RtspSource directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { Viewer, HttpError } from '../helpers/werift-viewer.js';
import { TestViewer } from '../helpers/fake-parts.js';
import { waitFor } from '../helpers/wait.js';
import { RtspSource } from '../../src/sources/rtsp.js';
import { Stream } from '../../src/core/stream.js';
import { SourceError } from '../../src/core/errors.js';
import { setRootLogger } from '../../src/core/log.js';
import { liveObjects } from '../../src/core/objects.js';
import { describeTrack, type Frame, type MediaRequest } from '../../src/core/media.js';
import { nalType } from '../../src/codecs/h264.js';
import { h265NalType } from '../../src/codecs/h265.js';

setRootLogger(pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));

const mine = ['RtspSource', 'RtspClient', 'RtspClientConnection', 'RtspUdpPortPair'];
function assertNoClientObjects(): void {
  const live = liveObjects();
  for (const k of mine) assert.equal(live[k] ?? 0, 0, `${k} still alive`);
}

const ALL: MediaRequest = { video: ['H264', 'H265'], audio: ['AAC', 'OPUS', 'PCMA', 'PCMU'] };

/** Starts an RtspSource and collects its frames until `until` holds (or `ms` passes). */
async function play(url: string, want: MediaRequest, until: (frames: Frame[]) => boolean, ms = 8000, opts = {}) {
  const src = new RtspSource(url, 'test', opts);
  const frames: Frame[] = [];
  src.on('frame', (f: Frame) => frames.push(f));
  try {
    const tracks = await src.start(new AbortController().signal, want);
    await waitFor('frames', () => until(frames), ms);
    return { src, tracks, frames };
  } catch (e) {
    src.close();
    await src.done;
    throw e;
  }
}

test('a WebRTC viewer of a camera gets H.264 over TCP and over UDP, with no ffmpeg; TEARDOWN when it leaves', { timeout: 45000 }, async (t) => {
  const cam = await GstCamera.start({ pipeline: 'h264' });
  const app = await CamrelayProcess.start(testConfig({ tcp: cam.url(), udp: cam.url(undefined, '#transport=udp') }));
  // Closed in finally too: an open werift peer would keep this test file's process alive.
  const viewers: Viewer[] = [];
  try {
    const baseline = app.sockets();
    for (const [name, transport] of [['tcp', /^RTP\/AVP\/TCP;unicast;interleaved=0-1$/], ['udp', /^RTP\/AVP;unicast;client_port=\d+-\d+$/]] as const) {
      const setupsBefore = cam.requests('SETUP').length;
      const connectsBefore = cam.connections();
      const v = new Viewer();
      viewers.push(v);
      await v.connect(app.base, name);
      await waitFor(`${name}: a keyframe with SPS/PPS and 50 video packets`, () => v.sawKeyframeWithParams() && v.video.length >= 50, 10000);
      assert.deepEqual(app.children(), [], 'no ffmpeg (or any child) runs for a native RTSP camera');
      assert.equal(cam.connections() - connectsBefore, 1, 'one connection to the camera');
      const setups = cam.requests('SETUP').slice(setupsBefore);
      assert.equal(setups.length, 1, 'only the video track is set up');
      assert.match(setups[0]!.transport ?? '', transport);
      if (name === 'udp') {
        // Read from /proc, which can miss a socket for an instant: look again before judging.
        await waitFor('the RTP/RTCP port pair', () => app.sockets().udp >= baseline.udp + 2, 2000).catch(() => undefined);
        const udp = app.sockets().udp;
        assert.ok(udp >= baseline.udp + 2, `an RTP/RTCP port pair is open while playing (udp sockets ${udp}, baseline ${baseline.udp})`);
      }
      t.diagnostic(`${name}: ${v.video.length} video RTP packets at the viewer, keyframe with SPS/PPS, ${app.children().length} children`);

      const from = cam.events.length;
      const left = Date.now();
      await v.close();
      // werift sends no DTLS close: the viewer ends the WHEP-less session by its disconnect timeout (2 s).
      await cam.waitEvent((e) => e.method === 'TEARDOWN', 6000, from);
      await cam.waitEvent((e) => e.event === 'closed', 2000, from);
      await waitFor(`${name}: camrelay's sockets back to baseline`, () => {
        const s = app.sockets();
        return s.udp <= baseline.udp && s.tcp <= baseline.tcp;
      }, 3000);
      assert.ok(Date.now() - left < 8000);
    }
    const objects = await app.objects();
    for (const k of mine) assert.equal(objects[k] ?? 0, 0, `${k} left in camrelay`);
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    await app.stop();
    await cam.stop();
  }
});

test('Digest auth from the URL: right credentials play, wrong ones give the viewer an error naming 401', { timeout: 30000 }, async () => {
  const auth = { method: 'digest' as const, user: 'admin', password: 'p@ss:wörd' };
  const cam = await GstCamera.start({ pipeline: 'h264', auth });
  const app = await CamrelayProcess.start(
    testConfig({ good: cam.url({ user: auth.user, password: auth.password }), bad: cam.url({ user: auth.user, password: 'nope' }) }),
  );
  try {
    const v = new Viewer();
    await v.connect(app.base, 'good');
    await waitFor('video with right credentials', () => v.sawKeyframeWithParams(), 10000);
    await v.close();

    const w = new Viewer();
    const t0 = Date.now();
    const err = await w.connect(app.base, 'bad').then(() => undefined, (e: unknown) => e);
    await w.close();
    assert.ok(err instanceof HttpError, 'the viewer gets an HTTP error');
    assert.equal(err.status, 502, 'a permanent source error, not a start timeout');
    assert.match(err.body, /DESCRIBE: 401 Unauthorized \(wrong username or password\)/);
    assert.ok(Date.now() - t0 < 5000, 'at once, not after start_timeout');
    // Credentials never reach a log line.
    const text = JSON.stringify(app.logs);
    assert.ok(!text.includes('p@ss') && !text.includes('nope') && !text.includes('p%40ss'), 'no password in the logs');
  } finally {
    await app.stop();
    await cam.stop();
  }
});

test('H.265 with VPS/SPS/PPS and AAC come out as tracks and frames through a Stream; unwanted audio is not set up', { timeout: 30000 }, async (t) => {
  if (!cameraCanRun('h265') || !cameraCanRun('h264-aac')) {
    t.skip('GStreamer lacks x265enc (gstreamer1.0-plugins-bad) or voaacenc');
    return;
  }
  const h265 = await GstCamera.start({ pipeline: 'h265' });
  const aac = await GstCamera.start({ pipeline: 'h264-aac' });
  const settings = { idleTimeout: 0, startTimeout: 8000, backoff: { base: 100, max: 1000, stableAfter: 10000 } };
  const make = (url: string) => new RtspSource(url, 's');
  try {
    // H.265 through a real Stream and a consumer that takes H.265.
    const s1 = new Stream('h265', [h265.url()], settings, make);
    const c1 = new TestViewer('c1', { video: ['H265'] });
    const tracks1 = await s1.attach(c1);
    assert.deepEqual(tracks1.map(describeTrack), ['video:H265/90000']);
    const p = tracks1[0]!.params!;
    assert.deepEqual([p.vps, p.sps, p.pps].map((b) => b && h265NalType(b)), [32, 33, 34], 'VPS, SPS, PPS known from sprop-* or in band');
    await waitFor('two H.265 keyframes', () => c1.frames.filter((f) => f.keyframe).length >= 2, 8000);
    const key = c1.frames.find((f) => f.keyframe)!;
    assert.deepEqual(key.data.slice(0, 3).map(h265NalType), [32, 33, 34], 'a keyframe starts with VPS, SPS, PPS');
    assert.ok(key.data.slice(3).some((n) => h265NalType(n) >= 16 && h265NalType(n) <= 21), 'and holds an IRAP picture');
    assert.equal(c1.frames[0]!.keyframe, true, 'the consumer starts at a keyframe');
    s1.close();
    await s1.done;

    // AAC + H.264; and a consumer that wants video only does not make the camera set up audio.
    const s2 = new Stream('aac', [aac.url()], settings, make);
    const c2 = new TestViewer('c2', { video: ['H264'], audio: ['AAC'] });
    const tracks2 = await s2.attach(c2);
    assert.deepEqual(tracks2.map(describeTrack), ['video:H264/90000', 'audio:AAC/48000']);
    assert.match(tracks2[1]!.codec.fmtp ?? '', /mode=AAC-hbr/i, 'AAC keeps its fmtp');
    assert.match(tracks2[1]!.codec.fmtp ?? '', /config=[0-9a-f]+/i);
    await waitFor('40 AAC frames', () => c2.frames.filter((f) => f.track.codec.name === 'AAC').length >= 40, 8000);
    const audio = c2.frames.filter((f) => f.track.codec.name === 'AAC');
    const steps = new Set(audio.slice(1).map((f, i) => f.timestamp - audio[i]!.timestamp));
    assert.deepEqual([...steps], [1024], 'one AAC access unit (1024 samples) per frame');
    assert.ok(audio.every((f) => f.data.length === 1 && f.data[0]!.length > 0 && f.data[0]![0] !== 0xff), 'raw AUs, no ADTS header');
    s2.close();
    await s2.done;

    const setupsBefore = aac.requests('SETUP').length;
    const s3 = new Stream('aac-video', [aac.url()], settings, make);
    const c3 = new TestViewer('c3', { video: ['H264'] });
    const tracks3 = await s3.attach(c3);
    assert.deepEqual(tracks3.map(describeTrack), ['video:H264/90000']);
    assert.equal(aac.requests('SETUP').length - setupsBefore, 1, 'one SETUP: the audio nobody wants stays off');
    s3.close();
    await s3.done;
    assertNoClientObjects();
  } finally {
    await h265.stop();
    await aac.stop();
  }
});

test('closing the source sends TEARDOWN and the camera connection is gone within 500 ms', { timeout: 20000 }, async (t) => {
  const cam = await GstCamera.start({ pipeline: 'h264' });
  try {
    for (const suffix of ['', '#transport=udp']) {
      const { src, frames } = await play(cam.url(undefined, suffix), { video: ['H264'] }, (f) => f.some((x) => x.keyframe));
      const k = frames.find((f) => f.keyframe)!;
      assert.deepEqual(k.data.slice(0, 2).map(nalType), [7, 8], 'keyframes carry SPS and PPS first');
      const from = cam.events.length;
      const t0 = Date.now();
      src.close();
      await src.done;
      const closedAt = await cam.waitEvent((e) => e.event === 'closed', 2000, from).then(() => Date.now());
      assert.ok(cam.events.slice(from).some((e) => e.method === 'TEARDOWN'), 'the camera saw TEARDOWN');
      assert.ok(closedAt - t0 < 500, `camera connection closed ${closedAt - t0} ms after close()`);
      t.diagnostic(`${suffix || 'tcp'}: camera saw TEARDOWN and closed ${closedAt - t0} ms after close()`);
      assert.equal(cam.openConnections(), 0);
      assertNoClientObjects();
    }
  } finally {
    await cam.stop();
  }
});

test('a camera that stops sending fails the source after the read timeout; keep-alives follow the announced session timeout', { timeout: 25000 }, async (t) => {
  const cam = await GstCamera.start({ pipeline: 'h264', sessionTimeout: 2 });
  try {
    const { src } = await play(cam.url(), { video: ['H264'] }, (f) => f.length > 0, 8000, { readTimeoutMs: 1000 });
    // Session timeout 2 s: a keep-alive every second (GET_PARAMETER, listed in the camera's Public).
    const from = cam.events.length;
    await cam.waitEvent((e) => e.method === 'GET_PARAMETER', 2500, from);
    const second = cam.events.length;
    await cam.waitEvent((e) => e.method === 'GET_PARAMETER', 2500, second);
    assert.equal(src.closed, false, 'still playing after 2+ s with keep-alives');

    const ended = new Promise<Error | undefined>((resolve) => src.once('close', resolve));
    const t0 = Date.now();
    cam.pause(); // SIGSTOP: the TCP connection stays up, nothing arrives
    const err = await ended;
    const after = Date.now() - t0;
    assert.ok(err instanceof SourceError);
    assert.equal(err.message, 'camera sent nothing for 1 s');
    assert.ok(after >= 700 && after < 2500, `declared dead after ${after} ms`);
    t.diagnostic(`camera SIGSTOPped: source failed after ${after} ms (read timeout 1000 ms)`);
    await src.done;
    assertNoClientObjects();
  } finally {
    cam.resume();
    await cam.stop();
  }
});

test('a camera that accepts TCP but never answers: the viewer gets a start-timeout error and no socket is left', { timeout: 25000 }, async () => {
  const held = new Set<net.Socket>();
  const server = net.createServer((s) => {
    held.add(s);
    s.on('close', () => held.delete(s));
    s.on('error', () => {});
    s.resume(); // read and never answer
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const app = await CamrelayProcess.start(`${testConfig({})}  mute:
    sources: ["rtsp://127.0.0.1:${port}/cam"]
    start_timeout: 1500ms
`);
  try {
    const baseline = app.sockets();
    const v = new Viewer();
    const err = await v.connect(app.base, 'mute').then(() => undefined, (e: unknown) => e);
    await v.close();
    assert.ok(err instanceof HttpError);
    assert.equal(err.status, 504);
    assert.match(err.body, /did not start within 1500 ms/);
    assert.ok(held.size <= 1, 'at most one connection at a time to the mute camera');
    await waitFor('camrelay closed its camera socket', () => held.size === 0, 3000);
    await waitFor('camrelay sockets back to baseline', () => app.sockets().tcp <= baseline.tcp, 3000);
    const objects = await app.objects();
    for (const k of mine) assert.equal(objects[k] ?? 0, 0, `${k} left in camrelay`);
  } finally {
    await app.stop();
    for (const s of held) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('a redirect is followed; rtspx:// plays over TLS without checking the certificate, rtsps:// checks it', { timeout: 25000 }, async () => {
  const cam = await GstCamera.start({ pipeline: 'h264' });
  // A redirector: answers anything with 302 to the camera.
  const redirector = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d) => {
      const cseq = /CSeq:\s*(\d+)/i.exec(d.toString())?.[1] ?? '1';
      s.write(`RTSP/1.0 302 Moved\r\nCSeq: ${cseq}\r\nLocation: ${cam.url()}\r\n\r\n`);
    });
  });
  await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
  // A TLS front for the camera, with a self-signed certificate made for this test.
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  const pipes = new Set<net.Socket>();
  const front = tls.createServer({ key: readFileSync(`${dir}/k.pem`), cert: readFileSync(`${dir}/c.pem`) }, (s) => {
    const up = net.connect(cam.port, '127.0.0.1');
    pipes.add(s).add(up);
    for (const x of [s, up]) {
      x.on('error', () => {});
      x.on('close', () => {
        pipes.delete(x);
        s.destroy();
        up.destroy();
      });
    }
    s.pipe(up).pipe(s);
  });
  front.on('tlsClientError', () => {});
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const tlsPort = (front.address() as net.AddressInfo).port;
  try {
    const r = await play(`rtsp://127.0.0.1:${(redirector.address() as net.AddressInfo).port}/old`, { video: ['H264'] }, (f) => f.some((x) => x.keyframe));
    r.src.close();
    await r.src.done;

    const x = await play(`rtspx://127.0.0.1:${tlsPort}/cam`, { video: ['H264'] }, (f) => f.some((y) => y.keyframe));
    assert.match(cam.requests('DESCRIBE').at(-1)!.uri ?? '', /\/cam$/);
    x.src.close();
    await x.src.done;

    await assert.rejects(play(`rtsps://127.0.0.1:${tlsPort}/cam`, { video: ['H264'] }, () => true), /TLS handshake with 127\.0\.0\.1:\d+: self[- ]signed certificate/);
    assertNoClientObjects();
  } finally {
    await new Promise((r) => redirector.close(r));
    for (const p of pipes) p.destroy();
    await new Promise((r) => front.close(r));
    rmSync(dir, { recursive: true, force: true });
    await cam.stop();
  }
});
