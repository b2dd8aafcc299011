// The HTTP/WebSocket bounds of a real camrelay, each at a tiny value: the header deadline cuts a
// slowloris client and a half-sent upgrade, the WebSocket idle deadline cuts a peer that answers
// no ping (and not one that does, nor the WebRTC session a socket opened), api.max_connections
// makes room by closing idle connections and refuses when all are busy, and the WebRTC sessions
// still connecting from one address are bounded. Each bite is in camrelay_api_refused_total.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { openRawConnections } from '../helpers/raw-connections.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { Signalling } from '../helpers/signalling.js';
import { CHROME_OFFER } from '../helpers/chrome-offer.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitEvent, waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x180#video=h264';

/** The test config with these settings in its api block. */
function config(api: string, webrtc = ''): string {
  let yaml = testConfig({ demo: DEMO }).replace('api: { listen: "127.0.0.1:0" }', `api: { listen: "127.0.0.1:0", ${api} }`);
  if (webrtc) yaml = yaml.replace('webrtc:\n', `webrtc:\n  ${webrtc}\n`);
  return yaml;
}

async function refused(app: CamrelayProcess, reason: string): Promise<number> {
  return metric(await scrape(app), 'camrelay_api_refused_total', { reason });
}

/** A raw TCP connection; resolves with what the server sent once it closed the connection. */
function raw(port: number): { socket: net.Socket; ended: Promise<{ text: string; ms: number }> } {
  const socket = net.connect(port, '127.0.0.1');
  const t0 = Date.now();
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  socket.on('error', () => undefined);
  const ended = new Promise<{ text: string; ms: number }>((resolve) => socket.once('close', () => resolve({ text, ms: Date.now() - t0 })));
  return { socket, ended };
}

test('api.header_timeout cuts a client that sends its headers slowly, and a half-sent upgrade', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(config('header_timeout: 400ms'));
  try {
    const before = await refused(app, 'header_timeout');
    const slow = raw(app.port);
    slow.socket.write('GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // Another header line every 100 ms: each byte is on time, the whole is not.
    let n = 0;
    const drip = setInterval(() => !slow.socket.destroyed && n++ < 50 && slow.socket.write(`X-${n}: a\r\n`), 100);
    const upgrade = raw(app.port);
    upgrade.socket.write('GET /api/ws?src=demo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n');
    try {
      const [a, b] = await Promise.all([slow.ended, upgrade.ended]);
      for (const r of [a, b]) {
        assert.match(r.text, /^HTTP\/1\.1 408/);
        assert.ok(r.ms < 2500, `cut after ${r.ms} ms`);
      }
    } finally {
      clearInterval(drip);
    }
    assert.equal((await refused(app, 'header_timeout')) - before, 2);
    await app.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('api.header_timeout'), 2000);
    // A client that sends its request at once is not affected.
    assert.equal((await request(`${app.base}/api`)).status, 200);
  } finally {
    assert.equal(await app.stop(), 0);
  }
});

test('api.idle_timeout closes a WebSocket that answers no ping, keeps one that does, and the WebRTC session outlives its socket', { timeout: 40000 }, async () => {
  const app = await CamrelayProcess.start(config('idle_timeout: 600ms'));
  const viewer = new Viewer();
  try {
    const before = await refused(app, 'ws_idle');
    const mute = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=demo`, { autoPong: false });
    const healthy = new Signalling(app.port, 'demo');
    await Promise.all([waitEvent(mute, 'open', 3000), healthy.open()]);
    const t0 = Date.now();
    const [code] = await waitEvent<[number, Buffer]>(mute, 'close', 4000);
    assert.equal(code, 1001);
    assert.ok(Date.now() - t0 >= 500, 'not before the deadline');
    assert.equal((await refused(app, 'ws_idle')) - before, 1);
    // Three deadlines later the socket that answers pings (as browsers and aiohttp do) is still open.
    await waitFor('three idle deadlines', () => Date.now() - t0 > 1800, 3000, 50);
    assert.equal(healthy.ws.readyState, WebSocket.OPEN);
    healthy.ws.close();

    // A session opened over a socket that then goes silent stays up after the socket is cut.
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=demo`, { autoPong: false });
    await waitEvent(ws, 'open', 3000);
    const closed = waitEvent<[number, Buffer]>(ws, 'close', 10000);
    const answer = new Promise<{ type: string; value: string }>((resolve) => ws.on('message', (d: Buffer) => resolve(JSON.parse(d.toString()) as { type: string; value: string })));
    ws.send(JSON.stringify({ type: 'webrtc/offer', value: await viewer.offer() }));
    const a = await answer;
    assert.equal(a.type, 'webrtc/answer');
    await viewer.answer(a.value);
    await closed;
    const after = viewer.video.length;
    await waitFor('video after the socket was cut', () => viewer.video.length > after + 20 && viewer.sawKeyframeWithParams(), 8000);
    const consumers = (await app.json<{ consumers: unknown[] }>('/api/streams?src=demo')).body.consumers;
    assert.equal(consumers.length, 1, 'the session lives on without its signalling socket');
  } finally {
    await viewer.close();
    assert.equal(await app.stop(), 0);
  }
});

const openCount = (socks: net.Socket[]) => socks.filter((s) => !s.destroyed && s.readyState === 'open').length;

test('api.max_connections: idle connections make room for new ones; when all are busy a new one is closed at accept', { timeout: 40000 }, async () => {
  const app = await CamrelayProcess.start(config('max_connections: 20'));
  const idle: net.Socket[] = [];
  const sockets: WebSocket[] = [];
  try {
    const before = await refused(app, 'max_connections');
    idle.push(...(await openRawConnections(app.port, 30)));
    // The 10 oldest made room for the 10 newest; the API still answers (it takes an idle one's place).
    await waitFor('only 20 connections left open', () => openCount(idle) <= 20, 5000);
    const t0 = Date.now();
    assert.equal((await request(`${app.base}/api`)).status, 200);
    assert.ok(Date.now() - t0 < 1000);
    // 20 WebSockets are busy connections: the last idle ones go, then nothing can come in.
    for (let i = 0; i < 20; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=demo`);
      ws.on('error', () => undefined);
      sockets.push(ws);
      await waitEvent(ws, 'open', 3000);
    }
    await waitFor('every idle connection closed', () => openCount(idle) === 0, 5000);
    await assert.rejects(request(`${app.base}/api`, { timeoutMs: 3000 }), /socket hang up|ECONNRESET|EPIPE/);
    await app.waitLog((l) => typeof l.msg === 'string' && l.msg.includes('every connection busy'), 2000);
    for (const ws of sockets) ws.close();
    await waitFor('the API answers again', async () => (await request(`${app.base}/api`, { timeoutMs: 1000 })).status === 200, 5000, 100);
    assert.ok((await refused(app, 'max_connections')) - before >= 31, 'each closed connection counted');
    for (const ws of sockets) assert.notEqual(ws.readyState, WebSocket.OPEN);
  } finally {
    for (const s of idle) s.destroy();
    for (const ws of sockets) ws.terminate();
    assert.equal(await app.stop(), 0);
  }
});

test('webrtc.max_connecting_per_client: offers that never connect are bounded per address (HTTP and WebSocket); more wait for a place; connected viewers leave the count', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(config('', 'max_connecting_per_client: 2'));
  const viewers: Viewer[] = [];
  try {
    const before = await refused(app, 'connecting_per_client');
    const consumers = async () => (await app.json<{ consumers: unknown[] }>('/api/streams?src=demo')).body.consumers.length;
    const post = () => request(`${app.base}/api/webrtc?src=demo`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: CHROME_OFFER });
    // 20 offers whose peer never does ICE: 2 get sessions; the others wait for a place, and none
    // comes before their wait (webrtc.timeouts.connect, 3 s here) ends: refused.
    let most = 0;
    let flooding = true;
    const watch = (async () => {
      for (let i = 0; flooding && i < 500; i++) {
        most = Math.max(most, await consumers());
        await new Promise((r) => setTimeout(r, 20)); // the sampling period
      }
    })();
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 20 }, () => post().then((r) => ({ ...r, ms: Date.now() - t0 }))));
    flooding = false;
    await watch;
    assert.ok(most <= 2, `at most 2 sessions at once, saw ${most}`);
    for (const r of results) assert.ok(r.status === 201 || r.status === 503, String(r.status));
    const refusedOnes = results.filter((r) => r.status === 503);
    assert.ok(refusedOnes.length >= 10, `${refusedOnes.length} refused`);
    for (const r of refusedOnes) {
      assert.ok(r.ms >= 2500, `refused after waiting for a place (${r.ms} ms)`);
      assert.match(r.text, /too many WebRTC sessions still connecting from 127\.0\.0\.1 \(webrtc\.max_connecting_per_client: 2\)/);
    }
    assert.equal((await refused(app, 'connecting_per_client')) - before, refusedOnes.length);
    await waitFor('the unconnected sessions timed out', async () => (await consumers()) === 0, 10000, 100);

    // The WebSocket shares the places: with both held, its offer is answered only once they free.
    assert.equal((await post()).status, 201);
    assert.equal((await post()).status, 201);
    const sig = await new Signalling(app.port, 'demo').open();
    const t1 = Date.now();
    sig.send({ type: 'webrtc/offer', value: CHROME_OFFER });
    await sig.next((m) => m.type === 'webrtc/answer' || m.type === 'error', 8000);
    assert.ok(Date.now() - t1 >= 2000, `the WebSocket offer waited for a place (${Date.now() - t1} ms)`);
    sig.ws.close();
    await waitFor('the unconnected sessions timed out', async () => (await consumers()) === 0, 10000, 100);

    // Three viewers at once from one address, with a bound of 2: the third waits briefly and connects.
    const three = Array.from({ length: 3 }, () => new Viewer());
    viewers.push(...three);
    await Promise.all(three.map((v) => v.connect(app.base, 'demo')));
    await waitFor('all three connected', () => three.every((v) => v.pc.connectionState === 'connected'), 8000);
  } finally {
    for (const v of viewers) await v.close();
    assert.equal(await app.stop(), 0);
  }
});
