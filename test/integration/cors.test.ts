// api.origin: "*" (go2rtc's key): a page of another origin (a dashboard card served by Home
// Assistant on another port) may read the API, write to it and open the WebSocket; without it,
// the default same-origin rule holds. The Host (DNS rebinding) check stays on either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';

const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36';
const DEMO = { demo: 'ffmpeg:virtual?video=testsrc2&size=320x180#video=h264' };
const withApi = (api: string) => testConfig(DEMO).replace('api: { listen: "127.0.0.1:0" }', `api: { listen: "127.0.0.1:0"${api} }`);
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type',
};
const corsOf = (h: http.IncomingHttpHeaders) => ({
  'access-control-allow-origin': h['access-control-allow-origin'],
  'access-control-allow-methods': h['access-control-allow-methods'],
  'access-control-allow-headers': h['access-control-allow-headers'],
});

function upgrade(port: number, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws?src=demo`, { headers });
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(String(res.statusCode));
    });
    ws.once('error', (e) => resolve(`error ${e.message}`));
  });
}

test('api.origin "*" over plain HTTP: CORS headers on every answer, preflights 204 before auth, any WebSocket Origin, Host check kept', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(withApi(', origin: "*", username: u, password: p'));
  const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
  try {
    const origin = 'http://127.0.0.1:1';
    for (const path of ['/api/streams', '/api/preload', '/api/schemes', '/api/ws', '/api/nothing']) {
      const pre = await request(app.base + path, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PUT', 'user-agent': CHROME } });
      assert.equal(pre.status, 204, path);
      assert.deepEqual(corsOf(pre.headers), CORS, path);
    }
    const get = await request(`${app.base}/api/streams`, { headers: { origin, ...auth } });
    assert.equal(get.status, 200);
    assert.deepEqual(corsOf(get.headers), CORS);
    const unauth = await request(`${app.base}/api/streams`, { headers: { origin } });
    assert.equal(unauth.status, 401, 'auth still applies to the request itself');
    assert.deepEqual(corsOf(unauth.headers), CORS);
    const put = await request(`${app.base}/api/streams?name=x&src=${encodeURIComponent('rtsp://10.9.9.9/x')}`, { method: 'PUT', headers: { origin, 'user-agent': CHROME, ...auth } });
    assert.equal(put.status, 200, put.text);
    const rebound = await request(`${app.base}/api/streams`, { headers: { host: `evil.example:${app.port}`, origin: `http://evil.example:${app.port}`, ...auth } });
    assert.equal(rebound.status, 403, 'a foreign Host is still refused');
    assert.equal(await upgrade(app.port, { origin: 'http://attacker.example', ...auth }), 'open');
    assert.equal(await upgrade(app.port, { host: `evil.example:${app.port}`, origin: 'http://attacker.example', ...auth }), '403');
  } finally {
    await app.stop();
  }
});

test('default api.origin: no CORS headers, a foreign WebSocket Origin refused', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(withApi(''));
  try {
    const get = await request(`${app.base}/api/streams`, { headers: { origin: 'http://127.0.0.1:1' } });
    assert.equal(get.status, 200);
    assert.equal(get.headers['access-control-allow-origin'], undefined);
    assert.equal(await upgrade(app.port, { origin: 'http://attacker.example' }), '403');
    assert.equal(await upgrade(app.port, {}), 'open');
  } finally {
    await app.stop();
  }
});

test('headless Chromium on another origin reads /api/streams, PUTs and opens the WebSocket only with api.origin "*"', { timeout: 90000, skip: chromiumSkip }, async () => {
  // The page's origin: another port on the same address.
  const page = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>card</title>'));
  await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
  const pagePort = (page.address() as AddressInfo).port;
  const browser = await Chromium.launch();
  const apps: CamrelayProcess[] = [];
  try {
    const tab = await browser.page();
    await tab.goto(`http://127.0.0.1:${pagePort}/`);
    const tryAll = (port: number, name: string) =>
      tab.evaluate(
        async ({ port, name }) => {
          const base = `http://127.0.0.1:${port}`;
          const out: Record<string, string> = {};
          try {
            const r = await fetch(`${base}/api/streams`);
            out.get = Object.keys((await r.json()) as object).sort().join(',');
          } catch (e) {
            out.get = `failed: ${String(e)}`;
          }
          try {
            const r = await fetch(`${base}/api/streams?name=${name}&src=${encodeURIComponent('rtsp://10.9.9.9/x')}`, { method: 'PUT' });
            out.put = String(r.status);
          } catch (e) {
            out.put = `failed: ${String(e)}`;
          }
          out.ws = await new Promise<string>((resolve) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws?src=demo`);
            ws.onopen = () => {
              ws.close();
              resolve('open');
            };
            ws.onerror = () => resolve('error');
          });
          return out;
        },
        { port, name },
      );

    const open = await CamrelayProcess.start(withApi(', origin: "*"'));
    apps.push(open);
    assert.deepEqual(await tryAll(open.port, 'card'), { get: 'demo', put: '200', ws: 'open' });
    assert.ok((await open.json<Record<string, unknown>>('/api/streams')).body.card, 'the PUT from the other origin was made');

    const closed = await CamrelayProcess.start(withApi(''));
    apps.push(closed);
    const r = await tryAll(closed.port, 'card');
    assert.match(r.get!, /^failed: TypeError/, 'the answer cannot be read');
    assert.match(r.put!, /^failed: TypeError/);
    assert.equal(r.ws, 'error');
    assert.equal((await closed.json<Record<string, unknown>>('/api/streams')).body.card, undefined, 'no PUT was made');
  } finally {
    for (const a of apps) await a.stop();
    await browser.close();
    await new Promise((r) => page.close(r));
  }
});
