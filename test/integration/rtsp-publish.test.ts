import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { RtspServer, parseListenAddress, type PublishSlot } from '../../src/rtsp/server.js';
import { RtspHeaders, RtspMessageReader, serializeInterleaved, serializeRequest, type RtspResponse } from '../../src/rtsp/message.js';
import { RtspListenError } from '../../src/rtsp/errors.js';
import { SourceError } from '../../src/core/errors.js';
import { describeTrack, type Frame } from '../../src/core/media.js';
import { liveObjects } from '../../src/core/objects.js';
import { setRootLogger } from '../../src/core/log.js';
import { nalType } from '../../src/codecs/h264.js';
import { waitEvent, waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));

// ---- helpers ----------------------------------------------------------------------------------

interface Ffmpeg {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function publishWithFfmpeg(url: string, audio: string[]): Ffmpeg {
  const args = [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-bf', '0',
    ...audio,
    '-f', 'rtsp', '-rtsp_transport', 'tcp', url,
  ];
  const child = spawn('/usr/bin/ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stderr: () => err };
}

async function stopFfmpeg(f: Ffmpeg): Promise<void> {
  if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
  await f.exited;
}

async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(t);
  }
}

async function startServer(): Promise<RtspServer> {
  const server = new RtspServer({ listen: '' });
  await server.listen();
  return server;
}

async function closeServer(server: RtspServer): Promise<void> {
  server.close();
  await within('server done', server.done, 5000);
  const live = liveObjects();
  for (const kind of ['RtspServer', 'RtspConnection', 'PublishSlot']) assert.equal(live[kind] ?? 0, 0, `${kind} still alive`);
}

/** A hand-driven RTSP client on a raw socket, for what ffmpeg would never send. */
class RawClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  #reader = new RtspMessageReader();
  #responses: RtspResponse[] = [];
  #cseq = 0;
  #waiting: (() => void) | undefined;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      for (const item of this.#reader.push(chunk)) if (item.type === 'response') this.#responses.push(item);
      this.#waiting?.();
    });
  }

  async request(method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<RtspResponse> {
    const h = new RtspHeaders({ CSeq: ++this.#cseq, ...headers });
    this.socket.write(serializeRequest({ method, url, headers: h, body: body === undefined ? undefined : Buffer.from(body) }));
    return this.response();
  }

  async response(): Promise<RtspResponse> {
    const next = this.#responses.shift();
    if (next) return next;
    await within('an RTSP response', new Promise<void>((resolve, reject) => {
      this.#waiting = resolve;
      this.socket.once('close', () => reject(new Error('connection closed without a response')));
    }), 5000);
    this.#waiting = undefined;
    return this.response();
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }
}

const SPS = Buffer.from('Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==', 'base64');
const PPS = Buffer.from('aM4PyA==', 'base64');
const RAW_SDP = [
  'v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=raw', 't=0 0',
  'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000',
  `a=fmtp:96 packetization-mode=1; sprop-parameter-sets=${SPS.toString('base64')},${PPS.toString('base64')}`,
  'a=control:streamid=0',
  'm=audio 0 RTP/AVP 97', 'a=rtpmap:97 MPEG4-GENERIC/44100/2', 'a=control:streamid=1',
  '',
].join('\r\n');

function rtp(payload: Buffer, seq: number, ts: number, marker: boolean, padding = 0): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80 | (padding ? 0x20 : 0);
  h[1] = (marker ? 0x80 : 0) | 96;
  h.writeUInt16BE(seq, 2);
  h.writeUInt32BE(ts, 4);
  h.writeUInt32BE(1, 8);
  const pad = Buffer.alloc(padding);
  if (padding) pad[padding - 1] = padding;
  return Buffer.concat([h, payload, pad]);
}

const types = (f: Frame) => f.data.map(nalType);

/** ffmpeg publishes; frames, keyframes with parameter sets and audio arrive. */
async function checkFfmpegPublish(slot: PublishSlot, ff: Ffmpeg, audio: string): Promise<Frame[]> {
  const frames: Frame[] = [];
  slot.on('frame', (f: Frame) => frames.push(f));
  const tracks = await within(`tracks (ffmpeg: ${ff.stderr()})`, slot.tracks(AbortSignal.timeout(10_000)), 11_000);
  assert.deepEqual(tracks.map(describeTrack), ['video:H264/90000', audio]);
  const video = () => frames.filter((f) => f.track.kind === 'video');
  await waitFor('25 video frames and some audio', () => video().length >= 25 && frames.some((f) => f.track.kind === 'audio'), 10_000);
  const keyframes = video().filter((f) => f.keyframe);
  assert.ok(keyframes.length >= 1, 'a keyframe arrived');
  for (const k of keyframes) {
    const t = types(k);
    assert.deepEqual(t.slice(0, 2), [7, 8], `keyframe starts with SPS, PPS: ${t.join(',')}`);
    assert.ok(t.indexOf(5) > 1, 'IDR after the parameter sets');
  }
  assert.ok(video().every((f) => !f.keyframe === !types(f).includes(5)), 'keyframe flag matches IDR presence');
  const vts = video().map((f) => f.timestamp);
  assert.ok(vts.every((t, i) => i === 0 || t > vts[i - 1]!), 'video timestamps increase');
  const video0 = tracks[0]!;
  assert.ok(video0.params?.sps && video0.params.pps, 'H.264 track carries SPS and PPS');
  return frames;
}

// ---- tests ------------------------------------------------------------------------------------

test('ffmpeg publishes H.264 + Opus; a second publisher gets 404; closing the slot stops ffmpeg', { timeout: 20_000 }, async () => {
  const server = await startServer();
  const slot = server.expectPublisher('h264-opus');
  assert.match(slot.url, /^rtsp:\/\/127\.0\.0\.1:\d+\/_publish\/[0-9a-f]{32}$/);
  const ff = publishWithFfmpeg(slot.url, ['-c:a', 'libopus']);
  try {
    await checkFfmpegPublish(slot, ff, 'audio:OPUS/48000/2');

    // The path is one-time: another publisher is refused and disconnected.
    const intruder = new RawClient(server.port);
    const res = await intruder.request('ANNOUNCE', slot.url, { 'Content-Type': 'application/sdp' }, RAW_SDP);
    assert.equal(res.status, 404);
    await within('intruder disconnected', intruder.closed, 5000);
    assert.ok(!slot.closed, 'the real publisher is unaffected');

    const closed = waitEvent<[Error | undefined]>(slot, 'close', 5000);
    slot.close();
    const [err] = await closed;
    assert.equal(err, undefined, 'closed by its owner: no error');
    const exit = await within('ffmpeg to exit after its connection was closed', ff.exited, 5000);
    assert.notEqual(exit.code, 0);
    await within('slot done', slot.done, 5000);
    await waitFor('connections gone', () => server.connectionCount === 0, 5000);
  } finally {
    await stopFfmpeg(ff);
    await closeServer(server);
  }
});

test('ffmpeg publishes H.264 + PCMA (static payload type 8); killing ffmpeg closes the slot with a SourceError', { timeout: 20_000 }, async () => {
  const server = await startServer();
  const slot = server.expectPublisher('h264-pcma');
  const ff = publishWithFfmpeg(slot.url, ['-c:a', 'pcm_alaw', '-ar', '8000', '-ac', '1']);
  try {
    const frames = await checkFfmpegPublish(slot, ff, 'audio:PCMA/8000');
    const audio = frames.filter((f) => f.track.kind === 'audio');
    assert.ok(audio.every((f) => f.data.length === 1 && f.data[0]!.length > 0));

    const closed = waitEvent<[Error | undefined]>(slot, 'close', 5000);
    ff.child.kill('SIGKILL');
    const [err] = await closed;
    assert.ok(err instanceof SourceError, `close error is a SourceError: ${String(err)}`);
    assert.match(err.message, /publisher disconnected/);
    await within('slot done', slot.done, 5000);
  } finally {
    await stopFfmpeg(ff);
    await closeServer(server);
  }
});

test('raw publisher: bad RTP is dropped, data on a channel never set up closes only that connection', { timeout: 10_000 }, async () => {
  const server = await startServer();
  const slot = server.expectPublisher('raw');
  const bystander = new RawClient(server.port);
  const c = new RawClient(server.port);
  try {
    assert.equal((await bystander.request('OPTIONS', '*')).status, 200);
    assert.equal((await bystander.request('constructor', '*')).status, 501, 'unknown methods: Not Implemented');
    assert.equal((await c.request('ANNOUNCE', slot.url, { 'Content-Type': 'application/sdp' }, RAW_SDP)).status, 200);
    const udp = await c.request('SETUP', `${slot.url}/streamid=0`, { Transport: 'RTP/AVP;unicast;client_port=5000-5001;mode=record' });
    assert.equal(udp.status, 461, 'UDP is refused');
    const s0 = await c.request('SETUP', `${slot.url}/streamid=0`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record' });
    assert.equal(s0.status, 200);
    assert.match(s0.headers.get('transport') ?? '', /interleaved=0-1/);
    const session = (s0.headers.get('session') ?? '').split(';')[0]!;
    assert.match(session, /^[0-9a-f]{16}$/);
    // The AAC media gets no track but may be set up; its data is dropped.
    assert.equal((await c.request('SETUP', `${slot.url}/streamid=1`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=2-3', Session: session })).status, 200);
    assert.equal((await c.request('RECORD', slot.url, { Session: 'wrong' })).status, 454);
    assert.equal((await c.request('RECORD', slot.url, { Session: session })).status, 200);
    const tracks = await slot.tracks();
    assert.deepEqual(tracks.map(describeTrack), ['video:H264/90000']);

    const frames: Frame[] = [];
    slot.on('frame', (f: Frame) => frames.push(f));
    const idr = Buffer.from([0x65, 1, 2, 3]);
    const p = Buffer.from([0x41, 9, 9]);
    const badPadding = rtp(p, 1, 1000, true, 2);
    badPadding[badPadding.length - 1] = 0; // padding count 0: dropped
    c.write(serializeInterleaved(0, badPadding));
    c.write(serializeInterleaved(2, Buffer.from([0x80, 97, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x21]))); // AAC: ignored
    c.write(serializeInterleaved(1, Buffer.from([0x80, 200, 0, 6]))); // RTCP: ignored
    c.write(serializeInterleaved(0, rtp(idr, 2, 4000, true)));
    c.write(serializeInterleaved(0, rtp(p, 3, 7600, true)));
    await waitFor('two frames', () => frames.length >= 2, 5000);
    assert.deepEqual(frames.map(types), [[7, 8, 5], [1]], 'SPS/PPS from the SDP put in front of the IDR');
    assert.deepEqual(frames[0]!.data[0], SPS);

    const closed = waitEvent<[Error | undefined]>(slot, 'close', 5000);
    c.write(serializeInterleaved(7, rtp(p, 4, 11200, true)));
    const [err] = await closed;
    assert.ok(err instanceof SourceError);
    assert.match(err.message, /ChannelNotSetUp/);
    await within('publisher disconnected', c.closed, 5000);
    assert.equal((await bystander.request('GET_PARAMETER', '*')).status, 200, 'other connections live on');
  } finally {
    bystander.socket.destroy();
    c.socket.destroy();
    slot.close();
    await closeServer(server);
  }
});

test('TEARDOWN is answered, then the connection and the slot close', { timeout: 10_000 }, async () => {
  const server = await startServer();
  const slot = server.expectPublisher('teardown');
  const c = new RawClient(server.port);
  try {
    assert.equal((await c.request('ANNOUNCE', slot.url, { 'Content-Type': 'application/sdp' }, RAW_SDP)).status, 200);
    const setup = await c.request('SETUP', `${slot.url}/streamid=0`, { Transport: 'RTP/AVP/TCP;unicast;mode=record' });
    assert.equal(setup.status, 200);
    assert.match(setup.headers.get('transport') ?? '', /interleaved=0-1/, 'channels chosen when the client names none');
    assert.equal((await c.request('RECORD', slot.url)).status, 200);
    await slot.tracks();
    const closed = waitEvent<[Error | undefined]>(slot, 'close', 5000);
    assert.equal((await c.request('TEARDOWN', slot.url)).status, 200);
    const [err] = await closed;
    assert.ok(err instanceof SourceError && /TEARDOWN/.test(err.message), String(err));
    await within('connection closed after TEARDOWN', c.closed, 5000);
  } finally {
    c.socket.destroy();
    await closeServer(server);
  }
});

const malformed: Array<[string, Buffer]> = [
  ['binary garbage', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x0a])],
  ['a bad Content-Length', Buffer.from('ANNOUNCE rtsp://x/y RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 12abc\r\n\r\n')],
  ['interleaved data before any SETUP', serializeInterleaved(0, Buffer.alloc(20, 0x80))],
  ['an oversized header', Buffer.from('OPTIONS * RTSP/1.0\r\n' + 'X-Pad: 0123456789abcdef\r\n'.repeat(1000))],
];
for (const [name, bytes] of malformed) {
  test(`malformed input (${name}) closes that connection and nothing else`, { timeout: 10_000 }, async () => {
    const server = await startServer();
    const slot = server.expectPublisher('untouched');
    const good = new RawClient(server.port);
    const bad = new RawClient(server.port);
    try {
      assert.equal((await good.request('OPTIONS', '*')).status, 200);
      bad.write(bytes);
      await within('the bad connection to close', bad.closed, 5000);
      assert.equal((await good.request('OPTIONS', '*')).status, 200);
      assert.ok(!slot.closed);
      await waitFor('server forgets the bad connection', () => server.connectionCount === 1, 5000);
    } finally {
      good.socket.destroy();
      bad.socket.destroy();
      slot.close();
      await closeServer(server);
    }
  });
}

test('unknown path: 404 and closed; ANNOUNCE without supported codec: 415 and a permanent error', { timeout: 10_000 }, async () => {
  const server = await startServer();
  const slot = server.expectPublisher('aac-only');
  const a = new RawClient(server.port);
  const b = new RawClient(server.port);
  try {
    const res = await a.request('ANNOUNCE', `rtsp://${server.loopbackAddress}/_publish/nope`, { 'Content-Type': 'application/sdp' }, RAW_SDP);
    assert.equal(res.status, 404);
    await within('close after 404', a.closed, 5000);

    const aacOnly = 'v=0\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\n';
    const pending = slot.tracks().then(
      () => assert.fail('tracks() resolved'),
      (e: unknown) => e,
    );
    const res2 = await b.request('ANNOUNCE', slot.url, { 'Content-Type': 'application/sdp' }, aacOnly);
    assert.equal(res2.status, 415);
    const e = await pending;
    assert.ok(e instanceof SourceError && e.permanent && /MPEG4-GENERIC/.test(e.message), String(e));
    assert.ok(slot.closed);
    await within('close after 415', b.closed, 5000);
  } finally {
    a.socket.destroy();
    b.socket.destroy();
    await closeServer(server);
  }
});

test('tracks() rejects on abort and when the owner closes the slot; server close closes waiting slots', { timeout: 10_000 }, async () => {
  const server = await startServer();
  try {
    const s1 = server.expectPublisher('aborted');
    const ac = new AbortController();
    const p1 = s1.tracks(ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(p1, /stop/);
    const p1b = s1.tracks();
    s1.close();
    await assert.rejects(p1b, SourceError);
    await assert.rejects(s1.tracks(), SourceError);

    const s2 = server.expectPublisher('orphan');
    const p2 = s2.tracks();
    const closed = waitEvent<[Error | undefined]>(s2, 'close', 5000);
    server.close();
    const [err] = await closed;
    assert.ok(err instanceof SourceError && /server closed/.test(err.message));
    await assert.rejects(p2, SourceError);
  } finally {
    await closeServer(server);
  }
});

test('listen: EADDRINUSE names the address; listen addresses parse', { timeout: 10_000 }, async () => {
  const a = await startServer();
  const b = new RtspServer({ listen: `127.0.0.1:${a.port}` });
  try {
    await assert.rejects(b.listen(), (e: unknown) => e instanceof RtspListenError && e.code === 'EADDRINUSE' && e.message.includes(`127.0.0.1:${a.port}`));
  } finally {
    b.close();
    await b.done;
    await closeServer(a);
  }
  const cases: Array<[string, string | undefined, number]> = [
    ['', '127.0.0.1', 0],
    [':8554', undefined, 8554],
    ['8554', undefined, 8554],
    ['127.0.0.1:8554', '127.0.0.1', 8554],
    ['[::]:8554', '::', 8554],
    ['[::1]:9', '::1', 9],
    ['localhost:8554', 'localhost', 8554],
  ];
  for (const [text, host, port] of cases) assert.deepEqual(parseListenAddress(text), { host, port }, text);
  for (const bad of ['::1:8554', 'x', ':99999', '[nothost]:1']) assert.throws(() => parseListenAddress(bad), RtspListenError, bad);
});
