// Issue 4 point 5: go2rtc's WebSocket signalling at /api/ws?src=NAME, against camrelay as a real
// process with a real ffmpeg source and a real werift peer as the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { WebSocket } from 'ws';
import { CamrelayProcess, nonZero, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitEvent, waitFor } from '../helpers/wait.js';
import { request } from '../helpers/http.js';
import { Signalling as SignallingAt, type Msg } from '../helpers/signalling.js';
import { describeOtherSockets } from '../helpers/proc-sockets.js';

/** A signalling client for this file's camrelay. */
class Signalling extends SignallingAt {
  constructor(src: string, path = '/api/ws') {
    super(app.port, src, path);
  }
}

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';
let app: CamrelayProcess;
// A camera that accepts the TCP connection and never answers: its stream stays 'starting'.
const silent = net.createServer((s) => {
  silentSockets.add(s);
  s.resume(); // read (and drop) what ffmpeg sends, so that its disconnect is seen
  s.on('close', () => silentSockets.delete(s));
});
const silentSockets = new Set<net.Socket>();
let baseline: { sockets: { tcp: number; udp: number; other: number }; objects: Record<string, number> };

before(async () => {
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as net.AddressInfo).port;
  app = await CamrelayProcess.start(testConfig({ demo: DEMO, slow: `ffmpeg:rtsp://127.0.0.1:${port}/never#video=h264` }));
  baseline = { sockets: app.sockets(), objects: await app.objects() };
});

after(async () => {
  assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  for (const s of silentSockets) s.destroy();
  silent.close();
});


// A release of the WebRTC library after its last peer may take a moment beyond the session's close.
async function backToBaseline(what: string, ms = 10_000): Promise<void> {
  const same = async () =>
    app.children().length === 0 &&
    JSON.stringify(app.sockets()) === JSON.stringify(baseline.sockets) &&
    JSON.stringify(nonZero(await app.objects())) === JSON.stringify(nonZero(baseline.objects));
  await waitFor(`${what}: back to baseline`, same, ms).catch(() => undefined);
  assert.equal(app.children().length, 0, `${what}: no ffmpeg left`);
  assert.deepEqual(app.sockets(), baseline.sockets, `${what}: sockets (other than TCP/UDP now: ${describeOtherSockets(app.pid).join(', ') || 'none'})`);
  assert.deepEqual(nonZero(await app.objects()), nonZero(baseline.objects), `${what}: live objects`);
}

/** A werift viewer whose offer leaves before gathering; its candidate lines are collected. */
async function trickleViewer(): Promise<{ viewer: Viewer; sdp: string; candidates: Promise<string[]> }> {
  const viewer = new Viewer();
  const lines: string[] = [];
  let done!: (l: string[]) => void;
  const candidates = new Promise<string[]>((r) => (done = r));
  const sdp = await viewer.offerTrickle((c) => (c ? lines.push(c) : done(lines)));
  return { viewer, sdp, candidates };
}

/**
 * The smallest STUN server (RFC 5389 Binding): werift gathers server-reflexive candidates before it
 * starts connectivity checks, so a STUN server that never answers would hold ICE for 5 s.
 */
function stunServe(sock: dgram.Socket, req: Buffer, from: dgram.RemoteInfo): boolean {
  if (req.length < 20 || req.readUInt16BE(0) !== 0x0001 || req.readUInt32BE(4) !== 0x2112a442) return false;
  const res = Buffer.alloc(32);
  res.writeUInt16BE(0x0101, 0); // Binding success
  res.writeUInt16BE(12, 2);
  req.copy(res, 4, 4, 20); // magic cookie and transaction id
  res.writeUInt16BE(0x0020, 20); // XOR-MAPPED-ADDRESS
  res.writeUInt16BE(8, 22);
  res.writeUInt16BE(0x0001, 24);
  res.writeUInt16BE(from.port ^ 0x2112, 26);
  const ip = from.address.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  res.writeUInt32BE((ip ^ 0x2112a442) >>> 0, 28);
  sock.send(res, from.port, from.address);
  return true;
}

const isAnswerV2 = (m: Msg) => m.type === 'webrtc' && (m.value as { type?: string }).type === 'answer';
const applied = (session: string, buffered: boolean) => (l: LogLine) =>
  l.msg === 'ws remote candidate applied' && l.session === session && l.buffered === buffered;

test('Home Assistant flow: answer before gathering, trickle both ways, socket closed right after the answer, media keeps flowing', { timeout: 30000 }, async () => {
  // The client's ice_servers are used for our side, as go2rtc does: a STUN request reaches this one.
  const stun = dgram.createSocket('udp4');
  const stunSeen = new Promise<void>((resolve) => stun.on('message', (b, from) => stunServe(stun, b, from) && resolve()));
  await new Promise<void>((r) => stun.bind(0, '127.0.0.1', r));
  const { viewer, sdp, candidates } = await trickleViewer();
  assert.doesNotMatch(sdp, /a=candidate:/, 'the offer leaves before gathering');
  const sig = await new Signalling('demo').open();
  try {
    // The browser's candidates trickle while camrelay still starts ffmpeg: they must be held. They go
    // right behind the offer, so that they reach camrelay before any answer can exist, however long
    // the viewer's own gathering takes on this machine.
    const early = await candidates;
    assert.ok(early.length > 0);
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp, ice_servers: [{ urls: [`stun:127.0.0.1:${stun.address().port}`] }] } });
    for (const c of early) sig.send({ type: 'webrtc/candidate', value: c });

    const answer = await sig.next(isAnswerV2);
    const answerSdp = (answer.value as { sdp: string }).sdp;
    assert.doesNotMatch(answerSdp, /a=candidate:/, 'the answer did not wait for ICE gathering');
    await viewer.answer(answerSdp);
    // One more candidate after the answer (a port where nothing listens) and the end marker.
    sig.send({ type: 'webrtc/candidate', value: 'candidate:9 1 udp 2122260222 127.0.0.1 9 typ host' });
    sig.send({ type: 'webrtc/candidate', value: '' });
    const first = await sig.next((m) => m.type === 'webrtc/candidate', 3000);
    assert.match(String(first.value), /^candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/);
    const closedAt = { video: viewer.video.length, audio: viewer.audio.length };
    const { code } = await sig.close();
    assert.equal(code, 1005, 'the client closed (no status)');
    // Only what came before the close is known to the viewer; the rest is ICE's job.
    for (const m of sig.messages.filter((x) => x.type === 'webrtc/candidate')) await viewer.addCandidate(String(m.value));

    const opened = await app.waitLog((l) => l.msg === 'ws webrtc answered' && l.stream === 'demo', 1000);
    const session = String(opened.session);
    await app.waitLog(applied(session, true), 2000);
    await app.waitLog(applied(session, false), 2000);
    await stunSeen;

    await waitFor('H.264 after the socket closed', () => viewer.video.length >= closedAt.video + 30 && viewer.sawKeyframeWithParams(), 8000);
    await waitFor('Opus after the socket closed', () => viewer.audio.length >= closedAt.audio + 10, 3000);
    const streams = (await app.json<Record<string, { consumers: { id: string; state: string }[] }>>('/api/streams')).body;
    assert.equal(streams.demo!.consumers.length, 1);
    assert.equal(streams.demo!.consumers[0]!.id, session);
    assert.equal((await app.objects()).WsConnection, 0, 'the signalling socket is gone, the session is not');

    // DELETE finds a session opened over the WebSocket.
    const del = await request(`${app.base}/api/webrtc?id=${session}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
  } finally {
    await viewer.close();
    await sig.close();
    stun.close();
  }
  await backToBaseline('after DELETE');
});

test('the older form: webrtc/offer with raw SDP → webrtc/answer, candidates after the answer', { timeout: 30000 }, async () => {
  const { viewer, sdp, candidates } = await trickleViewer();
  const sig = await new Signalling('demo').open();
  try {
    sig.send({ type: 'webrtc/offer', value: sdp });
    const answer = await sig.next((m) => m.type === 'webrtc/answer');
    assert.equal(typeof answer.value, 'string');
    assert.match(String(answer.value), /^v=0\r\n/);
    await viewer.answer(String(answer.value));
    const mark = app.logs.length;
    for (const c of await candidates) sig.send({ type: 'webrtc/candidate', value: c });
    const ours = await sig.next((m) => m.type === 'webrtc/candidate');
    await viewer.addCandidate(String(ours.value));
    const opened = await app.waitLog((l) => l.msg === 'ws webrtc answered' && l.form === 'webrtc/offer', 1000);
    await app.waitLog(applied(String(opened.session), false), 2000, mark);
    await waitFor('H.264 and Opus', () => viewer.sawKeyframeWithParams() && viewer.audio.length >= 10, 8000);
    await sig.close();
    const del = await request(`${app.base}/api/webrtc?id=${String(opened.session)}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
  } finally {
    await viewer.close();
  }
  await backToBaseline('after DELETE');
});

test('errors: unknown stream, garbage JSON, bad SDP, unknown type; other paths refused; nothing left behind', { timeout: 30000 }, async () => {
  // Unknown stream: go2rtc's error, and the socket stays open (go2rtc keeps it too).
  const nope = await new Signalling('nope').open();
  nope.send({ type: 'webrtc', value: { type: 'offer', sdp: 'v=0\r\n' } });
  const e1 = await nope.next((m) => m.type === 'error');
  assert.equal(e1.value, 'webrtc: stream not found');
  nope.send({ type: 'webrtc/offer', value: 'v=0\r\n' });
  assert.equal((await nope.next((m) => m.type === 'error', 3000, 1)).value, 'webrtc/offer: stream not found');
  assert.equal(nope.ws.readyState, WebSocket.OPEN);
  await nope.close();

  // Garbage JSON: the error, then the socket closes (go2rtc drops a connection it cannot read).
  const garbage = await new Signalling('demo').open();
  garbage.send('{"type": webrtc');
  const e2 = await garbage.next((m) => m.type === 'error');
  assert.match(String(e2.value), /^webrtc: bad JSON: /);
  assert.equal((await garbage.closed).code, 1007);

  // Bad SDP, in both forms: the error names the problem, and the socket stays usable.
  const bad = await new Signalling('demo').open();
  bad.send({ type: 'webrtc', value: { type: 'offer', sdp: 'hello' } });
  const e3 = await bad.next((m) => m.type === 'error');
  assert.match(String(e3.value), /^webrtc: offer is not SDP/);
  bad.send({ type: 'webrtc/offer', value: 'hello' });
  const e4 = await bad.next((m) => m.type === 'error', 3000, 1);
  assert.match(String(e4.value), /^webrtc\/offer: offer is not SDP/, 'go2rtc prefixes the type of the failed message');
  bad.send({ type: 'webrtc', value: { type: 'offer', sdp: 'v=0\r\n', ice_servers: [{ urls: ['http://example.com'] }] } });
  const e5 = await bad.next((m) => m.type === 'error', 3000, 2);
  assert.match(String(e5.value), /^webrtc: ice_servers\[0\]\.urls: not a stun/);
  // (MSE is served since issue 15; its errors are test/integration/mse-mp4.test.ts's.)
  assert.equal(bad.ws.readyState, WebSocket.OPEN);
  await bad.close();

  // Another path is not a WebSocket endpoint: the socket is dropped.
  const other = new Signalling('demo', '/api/wsx');
  const outcome = await Promise.race([waitEvent(other.ws, 'open', 3000).then(() => 'open'), other.closed.then(() => 'closed')]);
  assert.equal(outcome, 'closed');

  assert.equal(app.children().length, 0, 'no bad offer started the source');
  await backToBaseline('after errors');
});

test('socket closed while the stream starts: no session left, source stopped', { timeout: 30000 }, async () => {
  const { viewer, sdp } = await trickleViewer();
  const sig = await new Signalling('slow').open();
  try {
    const mark = app.logs.length;
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp } });
    await waitFor('ffmpeg connected to the camera', () => silentSockets.size === 1 && app.children().length === 1, 5000);
    await sig.close();
    assert.equal(sig.messages.length, 0, 'no answer came');
    const closed = await app.waitLog((l) => l.msg === 'webrtc session closed' && l.stream === 'slow', 3000, mark);
    assert.equal(closed.reason, 'viewer left before the answer');
    await waitFor('ffmpeg gone', () => app.children().length === 0, 3000);
    await waitFor('the camera connection dropped', () => silentSockets.size === 0, 2000);
    const streams = (await app.json<Record<string, { consumers: unknown[]; state: string }>>('/api/streams')).body;
    assert.equal(streams.slow!.consumers.length, 0);
    assert.equal(streams.slow!.state, 'idle');
  } finally {
    await viewer.close();
  }
  await backToBaseline('after the early close');
});

test('a peer that vanishes after the socket closed is dropped by the disconnect timeout, and ffmpeg goes', { timeout: 30000 }, async () => {
  const { viewer, sdp, candidates } = await trickleViewer();
  const sig = await new Signalling('demo').open();
  let session = '';
  try {
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp } });
    for (const c of await candidates) sig.send({ type: 'webrtc/candidate', value: c });
    const answer = await sig.next(isAnswerV2);
    await viewer.answer((answer.value as { sdp: string }).sdp);
    session = String((await app.waitLog((l) => l.msg === 'ws webrtc answered' && l.stream === 'demo' && !app.logs.some((x) => x.msg === 'webrtc session closed' && x.session === l.session), 1000)).session);
    await sig.close();
    await waitFor('media', () => viewer.sawKeyframeWithParams() && viewer.audio.length > 0, 8000);
  } finally {
    // werift sends no DTLS close alert: for camrelay the peer just goes silent.
    await viewer.close();
  }
  const t0 = Date.now();
  const closed = await app.waitLog((l) => l.msg === 'webrtc session closed' && l.session === session, 4000);
  assert.equal(closed.reason, 'disconnect timeout');
  assert.ok(Date.now() - t0 <= 3500, `dropped after ${Date.now() - t0} ms`);
  await waitFor('ffmpeg gone', () => app.children().length === 0, 2000);
  await backToBaseline('after the vanished peer');
});

test('our page can ask for the session id (camrelay_session) and end the session at once with DELETE', { timeout: 30000 }, async () => {
  const sig = await new SignallingAt(app.port, 'demo', '/api/ws', '&camrelay_session').open();
  const viewer = new Viewer();
  try {
    const lines: string[] = [];
    const sdp = await viewer.offerTrickle((c) => (c ? lines.push(c) : undefined));
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp } });
    const answer = await sig.next(isAnswerV2, 15000);
    await viewer.answer((answer.value as { sdp: string }).sdp);
    for (const l of lines) sig.send({ type: 'webrtc/candidate', value: l });
    const id = (await sig.next((m) => m.type === 'camrelay/session', 5000)).value as string;
    assert.match(id, /^[A-Za-z0-9_-]{12,}$/);
    await waitFor('video', () => viewer.video.length > 10, 10000);
    await sig.close();
    const t0 = Date.now();
    assert.equal((await request(`${app.base}/api/webrtc?id=${id}`, { method: 'DELETE' })).status, 200);
    await waitFor('source stopped at once', () => app.children().length === 0, 1000);
    assert.ok(Date.now() - t0 < 1000);
  } finally {
    await viewer.close();
    await sig.close();
  }
  await backToBaseline('after DELETE of a ws session');
});

test('shutdown with a signalling socket open: the client gets 1001 and camrelay exits 0', { timeout: 30000 }, async () => {
  const { viewer, sdp, candidates } = await trickleViewer();
  const sig = await new Signalling('demo').open();
  try {
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp } });
    for (const c of await candidates) sig.send({ type: 'webrtc/candidate', value: c });
    await sig.next(isAnswerV2);
    assert.equal(await app.stop(), 0);
    assert.equal((await sig.closed).code, 1001);
  } finally {
    await viewer.close();
  }
});
