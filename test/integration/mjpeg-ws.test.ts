// MJPEG over a WebSocket (go2rtc's {"type":"mjpeg"}) and the shared encoder, in process: a real
// Stream fed H.264 access units made by ffmpeg, the real encoder ffmpeg, real `ws` sockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { Stream, type StreamSettings } from '../../src/core/stream.js';
import { closeCodeOf } from '../../src/core/close-reason.js';
import { liveObjects } from '../../src/core/objects.js';
import type { Track } from '../../src/core/media.js';
import { MjpegHub, type JpegSink } from '../../src/outputs/mjpeg-hub.js';
import { startMjpegOverWs } from '../../src/api/ws-mjpeg.js';
import { ScriptedSource, H264, OPUS } from '../helpers/fake-parts.js';
import { encodeH264Clip, type H264Clip } from '../helpers/h264-clip.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

const settings: StreamSettings = { idleTimeout: 0, startTimeout: 3000, backoff: { base: 40, max: 320, stableAfter: 10_000 } };
const hub = new MjpegHub({ ffmpegBin: '/usr/bin/ffmpeg', grace: { quit: 500, term: 500 } });
let clip: H264Clip;
let server: http.Server;
let url = '';
const streams = new Map<string, Stream>();

/** A stream whose source plays the clip in a loop at its frame rate while it runs. */
function playing(name: string, tracks: Track[] = [H264]): Stream {
  const s = new Stream(name, ['test://' + name], settings, (u) => {
    const src = new ScriptedSource(u, { outcome: 'ok', after: 0 }, tracks);
    let i = 0;
    // The camera's clock, not a synchronisation: frames come at the clip's rate as a camera's would.
    const pump = setInterval(() => {
      if (!tracks.includes(H264)) return;
      const units = clip.units[i % clip.units.length]!;
      src.emitFrame({ timestamp: i * (90000 / clip.fps), keyframe: units.some((n) => (n[0]! & 0x1f) === 5), data: units });
      i++;
    }, 1000 / clip.fps);
    src.once('close', () => clearInterval(pump));
    return src;
  });
  streams.set(name, s);
  return s;
}

/** The encoder ffmpegs this process runs now. */
function encoders(): number {
  const out = execFileSync('ps', ['-o', 'args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes('ffmpeg') && l.includes('-f mjpeg')).length;
}

function jpegSize(jpeg: Buffer): { codec: string; width: number; height: number } {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-wsjpeg-'));
  try {
    writeFileSync(path.join(dir, 'x.jpg'), jpeg);
    const out = execFileSync('/usr/bin/ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', path.join(dir, 'x.jpg')], { encoding: 'utf8' });
    const s = (JSON.parse(out) as { streams: { codec_name: string; width: number; height: number }[] }).streams[0]!;
    return { codec: s.codec_name, width: s.width, height: s.height };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A go2rtc-style client: sends {"type":"mjpeg"}, keeps the text messages and the pictures. */
class Client {
  readonly ws: WebSocket;
  texts: string[] = [];
  jpegs: Buffer[] = [];
  order: string[] = [];
  constructor(stream: string, query = '') {
    this.ws = new WebSocket(`${url}?src=${stream}${query}`);
    this.ws.on('open', () => this.ws.send(JSON.stringify({ type: 'mjpeg' })));
    this.ws.on('message', (data, isBinary) => {
      const b = data as Buffer;
      if (isBinary) this.jpegs.push(b);
      else this.texts.push(b.toString());
      this.order.push(isBinary ? 'jpeg' : 'text');
    });
  }
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === this.ws.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

before(async () => {
  clip = await encodeH264Clip({ size: '320x180', frames: 50, fps: 25, gop: 10 });
  server = http.createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    ws.once('message', () => {
      const width = q.get('width');
      startMjpegOverWs(ws, streams.get(q.get('src') ?? '')!, hub, { ...(width && { width: Number(width) }), remoteAddr: req.socket.remoteAddress });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/ws`;
});
after(async () => {
  for (const s of streams.values()) s.close();
  await Promise.all([...streams.values()].map((s) => s.done));
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test('{"type":"mjpeg"} is answered, then each binary message is one whole JPEG; two sockets share one encoder, which goes with the last', { timeout: 30000 }, async () => {
  const stream = playing('cam');
  const a = new Client('cam');
  await waitFor('3 pictures on the first socket', () => a.jpegs.length >= 3, 10000);
  assert.deepEqual(a.texts, ['{"type":"mjpeg"}']);
  assert.equal(a.order[0], 'text', 'the answer comes before the first picture');
  for (const j of a.jpegs) {
    assert.deepEqual([j[0], j[1], j.at(-2), j.at(-1)], [0xff, 0xd8, 0xff, 0xd9], 'a message is one JPEG, SOI to EOI');
  }
  assert.deepEqual(jpegSize(a.jpegs.at(-1)!), { codec: 'mjpeg', width: 320, height: 180 });

  const b = new Client('cam');
  await waitFor('a picture on the second socket', () => b.jpegs.length >= 1, 5000);
  assert.equal(hub.encoders, 1, 'one encoder for both sockets');
  assert.equal(encoders(), 1, 'one encoder ffmpeg');
  assert.equal(stream.consumers.filter((c) => c.info().type === 'mjpeg').length, 2, 'each socket is a consumer of its own');

  // The first socket fed the encoder; the second carries on without it.
  await a.close();
  const had = b.jpegs.length;
  await waitFor('pictures after the first socket left', () => b.jpegs.length >= had + 5, 5000);
  assert.ok(b.jpegs.slice(had).every((j) => j[0] === 0xff && j[1] === 0xd8 && j.at(-1) === 0xd9));

  await b.close();
  const t0 = Date.now();
  await waitFor('encoder ffmpeg gone', () => encoders() === 0, 1000);
  await waitFor('stream idle', () => stream.state === 'idle', 2000);
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(hub.encoders, 0);
  const live = liveObjects();
  for (const k of ['MjpegViewer', 'MjpegEncoder', 'VideoFrameConsumer', 'ChildProcess']) assert.equal(live[k] ?? 0, 0, k);
});

test('two sizes of one stream run two encoders', { timeout: 30000 }, async () => {
  playing('sizes');
  const a = new Client('sizes');
  const b = new Client('sizes', '&width=160');
  await waitFor('pictures on both', () => a.jpegs.length >= 1 && b.jpegs.length >= 1, 10000);
  assert.equal(hub.encoders, 2);
  assert.equal(encoders(), 2);
  assert.deepEqual(jpegSize(b.jpegs.at(-1)!), { codec: 'mjpeg', width: 160, height: 90 });
  await Promise.all([a.close(), b.close()]);
  await waitFor('both encoders gone', () => encoders() === 0, 1000);
});

test('a stream without H.264/H.265 video is answered with an mjpeg error', { timeout: 10000 }, async () => {
  playing('audio', [OPUS]);
  const c = new Client('audio');
  const text = await waitFor('an answer', () => c.texts[0], 5000);
  const msg = JSON.parse(text) as { type: string; value: string };
  assert.equal(msg.type, 'error');
  assert.match(msg.value, /^mjpeg: /);
  assert.equal(c.jpegs.length, 0);
  await c.close();
  assert.equal(hub.encoders, 0);
});

test('a viewer whose buffer is over the bound is dropped as slow_consumer; the other keeps its pictures', { timeout: 30000 }, async () => {
  const stream = playing('slow');
  const sink = (): JpegSink & { got: number; stuck: number } => ({
    got: 0,
    stuck: 0,
    get buffered() {
      return this.stuck;
    },
    open() {},
    write() {
      this.got++;
    },
    end() {},
  });
  const fast = sink();
  const slow = sink();
  const vf = hub.viewer(stream, {}, fast, { via: 'test' });
  const vs = hub.viewer(stream, {}, slow, { via: 'test' });
  let reason: Error | undefined;
  vs.once('close', (r?: Error) => (reason = r));
  await Promise.all([vf.start(), vs.start()]);
  await waitFor('pictures on both', () => fast.got >= 1 && slow.got >= 1, 10000);
  slow.stuck = 64 * 1024 * 1024;
  await waitFor('the slow viewer dropped', () => vs.closed, 5000);
  assert.equal(closeCodeOf(reason), 'slow_consumer');
  const had = fast.got;
  await waitFor('the other one goes on', () => fast.got >= had + 3, 5000);
  assert.equal(hub.encoders, 1);
  vf.close();
  await waitFor('encoder gone', () => encoders() === 0, 1000);
});
