// Issue 12: what one hostile RTSP client can do to camrelay's RTSP server (real, in this process,
// serving a real ffmpeg stream): bad bytes in a header, too many connections, a request sent one
// byte at a time. Each must cost only that client's connection; the server keeps answering
// everyone else, and the process stays up (the test runner fails a file on an unhandled rejection).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { chattySocket, openSocket, probeOptions, rawExchange } from '../helpers/rtsp-raw.js';
import { startMiniRelay, type MiniRelay } from '../helpers/rtsp-mini-relay.js';
import { waitFor } from '../helpers/wait.js';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';

setRootLogger(pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264';

let relay: MiniRelay;
let port = 0;
const url = (path = 'demo') => relay.url(path);

before(async () => {
  relay = await startMiniRelay({ demo: [DEMO] });
  port = relay.server.port;
});

after(async () => {
  await relay?.close();
});

test('regression: a bare CR inside CSeq is answered 400, and camrelay keeps serving', { timeout: 30_000 }, async () => {
  // Before issue 12 the reader took this, the header writer threw inside the async DESCRIBE
  // handler, and the unhandled rejection ended the process.
  const r = await rawExchange(port, `DESCRIBE ${url()} RTSP/1.0\r\nCSeq: 1\r2\r\nAccept: application/sdp\r\n\r\n`, 10_000);
  assert.equal(r.responses[0]?.status, 400, `answered ${r.responses[0]?.status}`);
  assert.match(r.responses[0]!.reason, /BadHeaderValue: CR inside header line "CSeq: 1\\r2"/);
  assert.equal(r.closed, true, 'the connection is closed after the 400');
  assert.equal(await probeOptions(port), 200, 'another connection is answered');
});

test('LF and NUL in header values, and a CR in the CSeq of a SETUP, are answered 400', { timeout: 30_000 }, async () => {
  for (const bad of ['CSeq: 1\nX-Foo: bar', 'User-Agent: a\0b']) {
    const r = await rawExchange(port, `DESCRIBE ${url()} RTSP/1.0\r\nCSeq: 2\r\n${bad}\r\n\r\n`, 10_000);
    // A bare LF ends a header line (lenient peers), so "X-Foo" is a field; the NUL is refused.
    if (bad.includes('\n')) assert.equal(r.responses[0]?.status, 200, JSON.stringify(bad));
    else assert.equal(r.responses[0]?.status, 400, JSON.stringify(bad));
  }
  // The same connection DESCRIBEs well, then its SETUP carries a CR in CSeq: the SETUP handler
  // is the other async one.
  const player = new RawRtspPlayer(port);
  try {
    const d = await player.request('DESCRIBE', url());
    assert.equal(d.status, 200);
    player.socket.write(`SETUP ${url()}/trackID=0 RTSP/1.0\r\nCSeq: 9\r9\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n`);
    await waitFor('the connection closed after the 400', () => player.socket.destroyed || player.socket.readableEnded, 10_000);
  } finally {
    player.destroy();
  }
  assert.equal(await probeOptions(port), 200);
  // A player that does everything right still plays.
  const good = new RawRtspPlayer(port);
  try {
    await good.play(url());
    await waitFor('frames', () => good.frames(0) >= 5, 15_000);
  } finally {
    good.destroy();
  }
});

test('regression (found by the server fuzz): a UDP SETUP to client_port=0 is refused, not sent to until dgram throws', { timeout: 30_000 }, async () => {
  const player = new RawRtspPlayer(port);
  try {
    assert.equal((await player.request('DESCRIBE', url())).status, 200);
    const s = await player.request('SETUP', `${url()}/trackID=0`, { Transport: 'RTP/AVP;unicast;client_port=0-0' });
    assert.equal(s.status, 461);
    // The same player can still set up a transport that exists, and play.
    const ok = await player.request('SETUP', `${url()}/trackID=0`, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
    assert.equal(ok.status, 200);
  } finally {
    player.destroy();
  }
  assert.equal(await probeOptions(port), 200);
});

// ---- bounds: rtsp.max_connections and rtsp.header_timeout --------------------------------------

async function boundedRelay(opts: { maxConnections: number; headerTimeoutMs: number; probationForLoopback?: boolean }) {
  const refusals: string[] = [];
  const r = await startMiniRelay(
    { demo: [DEMO] },
    { maxConnections: opts.maxConnections, probationForLoopback: opts.probationForLoopback, connection: { headerTimeoutMs: opts.headerTimeoutMs }, onRefused: (why) => refusals.push(why) },
  );
  return { relay: r, refusals };
}

test('rtsp.max_connections: with every connection holding a session, one more is closed at accept and counted; after a close the next is served', { timeout: 30_000 }, async () => {
  const { relay: r, refusals } = await boundedRelay({ maxConnections: 3, headerTimeoutMs: 5000, probationForLoopback: false });
  const players: RawRtspPlayer[] = [];
  try {
    // Three players (the stream's own ffmpeg connection is not counted).
    for (let i = 0; i < 3; i++) {
      const p = new RawRtspPlayer(r.server.port);
      players.push(p);
      assert.equal((await p.request('DESCRIBE', r.url('demo'))).status, 200);
    }
    const over = await rawExchange(r.server.port, `OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n`, 5000);
    assert.equal(over.closed, true, 'closed');
    assert.equal(over.responses.length, 0, 'with no answer');
    assert.deepEqual(refusals, ['max_connections']);
    players.shift()!.destroy();
    await waitFor('one slot free', () => r.server.connectionCount === 3, 5000);
    assert.equal(await probeOptions(r.server.port), 200);
  } finally {
    for (const p of players) p.destroy();
    await r.close();
  }
});

test('rtsp.max_connections: idle connections without a session make room for a player, oldest first', { timeout: 30_000 }, async () => {
  const { relay: r, refusals } = await boundedRelay({ maxConnections: 3, headerTimeoutMs: 5000, probationForLoopback: false });
  const held: Awaited<ReturnType<typeof openSocket>>[] = [];
  let player: RawRtspPlayer | undefined;
  try {
    for (let i = 0; i < 3; i++) held.push(await openSocket(r.server.port));
    await waitFor('3 connections held', () => r.server.connectionCount === 3, 5000);
    // They must have been quiet for a second before they count as idle (a new client gets time for its first request).
    await new Promise((res) => setTimeout(res, 1100));
    const p = (player = new RawRtspPlayer(r.server.port));
    await p.play(r.url('demo'));
    await waitFor('frames', () => p.frames(0) >= 5, 15_000);
    // The player and the stream's ffmpeg (no probation in this test) each took the place of the oldest.
    for (const i of [0, 1]) assert.ok(await Promise.race([held[i]!.gone.then(() => true), new Promise((res) => setTimeout(() => res(false), 3000))]), `idle connection ${i} was closed`);
    assert.equal(held[2]!.socket.destroyed, false, 'the newest stays');
    assert.ok(refusals.length >= 1 && refusals.every((x) => x === 'max_connections'), refusals.join());
  } finally {
    player?.destroy();
    for (const h of held) h.socket.destroy();
    await r.close();
  }
});

test("rtsp.max_connections: with the cap full of strangers, the stream's own ffmpeg still publishes; another player gets 503", { timeout: 40_000 }, async () => {
  const { relay: r, refusals } = await boundedRelay({ maxConnections: 3, headerTimeoutMs: 5000 });
  const held: Awaited<ReturnType<typeof chattySocket>>[] = [];
  const player = new RawRtspPlayer(r.server.port);
  try {
    // Strangers that keep asking OPTIONS: no session, but never idle, so none makes room.
    for (let i = 0; i < 2; i++) held.push(await chattySocket(r.server.port));
    // The player is the third connection; its DESCRIBE starts the ffmpeg source, whose publish
    // connection (the fourth) comes from loopback and claims its one-time path.
    await player.play(r.url('demo'));
    await waitFor('frames from the ffmpeg source', () => player.frames(0) >= 5, 15_000);
    assert.equal(r.server.connectionCount, 4);
    const late = await rawExchange(r.server.port, `DESCRIBE ${r.url('demo')} RTSP/1.0\r\nCSeq: 1\r\n\r\n`, 5000);
    assert.equal(late.responses[0]?.status, 503);
    assert.match(late.responses[0]!.reason, /too many connections/);
    assert.equal(late.closed, true);
    assert.deepEqual(refusals, ['max_connections']);
  } finally {
    player.destroy();
    for (const h of held) h.stop();
    await r.close();
  }
});

test('rtsp.header_timeout: a request sent one byte at a time is cut at the deadline; slow but complete requests and long publishes are not', { timeout: 30_000 }, async () => {
  const HEADER_TIMEOUT_MS = 800;
  const { relay: r, refusals } = await boundedRelay({ maxConnections: 16, headerTimeoutMs: HEADER_TIMEOUT_MS });
  const player = new RawRtspPlayer(r.server.port);
  try {
    await player.play(r.url('demo'));
    // Slowloris: a byte every 100 ms keeps the idle timeout from firing, for ever before issue 12.
    const { socket, gone } = await openSocket(r.server.port);
    const request = Buffer.from(`OPTIONS ${r.url('demo')} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: ${'x'.repeat(200)}\r\n\r\n`);
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < request.length && !socket.destroyed) socket.write(request.subarray(sent, ++sent));
    }, 100);
    let answered = false;
    socket.on('data', () => (answered = true));
    const closedAfter = await Promise.race([gone, new Promise<number>((res) => setTimeout(() => res(Infinity), 10_000))]);
    clearInterval(drip);
    socket.destroy();
    assert.ok(closedAfter >= HEADER_TIMEOUT_MS - 50 && closedAfter < HEADER_TIMEOUT_MS + 1500, `closed after ${closedAfter} ms`);
    assert.ok(sent < request.length, 'before the request was complete');
    assert.equal(answered, false);
    assert.deepEqual(refusals, ['header_timeout']);
    // A request in three parts well within the deadline is answered.
    const slow = await openSocket(r.server.port);
    let reply = '';
    slow.socket.on('data', (d: Buffer) => (reply += d.toString()));
    for (const part of ['OPTIONS * RTSP/1.0\r\n', 'CSeq: 7\r\n', '\r\n']) {
      slow.socket.write(part);
      await new Promise((res) => setTimeout(res, 150));
    }
    await waitFor('the answer', () => /^RTSP\/1\.0 200 OK\r\nCSeq: 7/.test(reply), 5000);
    slow.socket.destroy();
    // The ffmpeg source has been publishing (frames arriving in pieces) for longer than the deadline.
    const before = player.frames(0);
    await waitFor('more frames', () => player.frames(0) >= before + 25, 10_000);
    assert.deepEqual(refusals, ['header_timeout']);
  } finally {
    player.destroy();
    await r.close();
  }
});

test('camrelay reads rtsp.max_connections and rtsp.header_timeout from its config, counts each bound in camrelay_rtsp_refused_total, and survives the CR in CSeq', { timeout: 60_000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: DEMO }, '', 'max_connections: 2, header_timeout: 600ms'));
  const held = await chattySocket(app.rtspPort);
  let player: RawRtspPlayer | undefined;
  try {
    const zero = await scrape(app);
    for (const reason of ['max_connections', 'header_timeout', 'publish_forbidden']) assert.equal(metric(zero, 'camrelay_rtsp_refused_total', { reason }), 0, reason);
    // A request that never completes is cut at header_timeout (with the player not yet playing, below the cap).
    const slow = await rawExchange(app.rtspPort, 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n', 5000);
    assert.equal(slow.responses.length, 0);
    assert.equal(slow.closed, true);
    assert.ok(slow.closedAfterMs! >= 550 && slow.closedAfterMs! < 3000, `closed after ${slow.closedAfterMs} ms`);
    // The chatty connection and the player fill the cap; the stream's ffmpeg, a third, still publishes.
    const p = (player = new RawRtspPlayer(app.rtspPort));
    await p.play(`rtsp://127.0.0.1:${app.rtspPort}/demo`);
    await waitFor('frames', () => p.frames(0) >= 5, 15_000);
    const late = await rawExchange(app.rtspPort, `DESCRIBE rtsp://127.0.0.1:${app.rtspPort}/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n`, 5000);
    assert.equal(late.responses[0]?.status, 503);
    // Over the cap, a loopback connection that says nothing has header_timeout to show it is ours.
    const silent = await openSocket(app.rtspPort);
    const silentFor = await Promise.race([silent.gone, new Promise<number>((res) => setTimeout(() => res(Infinity), 5000))]);
    silent.socket.destroy();
    assert.ok(silentFor < 3000, `a silent connection beyond the cap closed after ${silentFor} ms`);
    const m = await scrape(app);
    assert.equal(metric(m, 'camrelay_rtsp_refused_total', { reason: 'max_connections' }), 2);
    assert.equal(metric(m, 'camrelay_rtsp_refused_total', { reason: 'header_timeout' }), 1);
    assert.ok(app.logs.some((l) => l.msg === 'closing connection' && /HeaderTimeout/.test(String(l.err))), 'a log line says why');
    // The regression of the first test, against the whole process: answered 400, and camrelay lives.
    const cr = await rawExchange(app.rtspPort, `DESCRIBE rtsp://127.0.0.1:${app.rtspPort}/demo RTSP/1.0\r\nCSeq: 1\r2\r\n\r\n`, 5000);
    assert.equal(cr.responses[0]?.status, 400);
    assert.equal((await app.json('/api')).status, 200);
    assert.equal(app.child.exitCode, null);
  } finally {
    player?.destroy();
    held.stop();
    await app.stop();
  }
});
