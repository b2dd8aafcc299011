// The Host/Origin rule against a real camrelay, with plain HTTP requests as curl, Home Assistant
// and browsers send them: clients that are not browsers are never affected; a browser request must
// name one of our hosts, and a browser write (or WebSocket) must come from our own origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import WebSocket from 'ws';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';

const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36';
let app: CamrelayProcess;

before(async () => {
  const yaml = testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x180#video=h264' });
  app = await CamrelayProcess.start(yaml.replace('api: { listen: "127.0.0.1:0" }', 'api: { listen: "127.0.0.1:0", allowed_hosts: [cams.example.org] }'));
});
after(async () => {
  assert.equal(await app.stop(), 0);
});

const get = (path: string, headers: Record<string, string>) => request(app.base + path, { headers });
const put = (name: string, headers: Record<string, string>) =>
  request(`${app.base}/api/streams?name=${name}&src=${encodeURIComponent('rtsp://10.9.9.9/x')}`, { method: 'PUT', headers });

test('clients that are not browsers reach the API under any Host name', { timeout: 20000 }, async () => {
  for (const ua of ['curl/8.5.0', 'HomeAssistant/2024.12.0 aiohttp/3.11.9 Python/3.12']) {
    // Another container calling http://camrelay:1984.
    const r = await get('/api/streams', { host: `camrelay:${app.port}`, 'user-agent': ua });
    assert.equal(r.status, 200, r.text);
    const w = await put('fromcurl', { host: `camrelay:${app.port}`, 'user-agent': ua });
    assert.equal(w.status, 200, w.text);
  }
  assert.equal((await request(`${app.base}/api/streams?src=fromcurl`, { method: 'DELETE' })).status, 200);
});

test('a browser request naming a foreign Host gets 403 naming it; our names pass', { timeout: 20000 }, async () => {
  const before = await scrape(app);
  const browserish: Record<string, string>[] = [
    { host: `evil.example:${app.port}`, 'user-agent': CHROME },
    { host: `evil.example:${app.port}`, 'sec-fetch-site': 'same-origin' },
    { host: `evil.example:${app.port}`, origin: `http://evil.example:${app.port}` },
    { host: `evil.example:${app.port}`, referer: `http://evil.example:${app.port}/` },
  ];
  for (const headers of browserish) {
    const r = await get('/api/streams', headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.equal(r.headers['content-type']?.split(';')[0], 'application/json');
    assert.match((JSON.parse(r.text) as { error: string }).error, new RegExp(`Host "evil\\.example:${app.port}" is not one of this server's names.*api\\.allowed_hosts`));
  }
  const after = await scrape(app);
  assert.equal(metric(after, 'camrelay_api_refused_total', { reason: 'host' }) - metric(before, 'camrelay_api_refused_total', { reason: 'host' }), 4);
  const short = hostname().split('.')[0]!;
  for (const host of [`127.0.0.1:${app.port}`, `localhost:${app.port}`, `cam.localhost:${app.port}`, `[::1]:${app.port}`, `${short}:${app.port}`, `${short}.local:${app.port}`, `cams.example.org:${app.port}`]) {
    const r = await get('/api/streams', { host, 'user-agent': CHROME, 'sec-fetch-site': 'same-origin' });
    assert.equal(r.status, 200, `${host}: ${r.text}`);
  }
});

test('a browser write needs our own Origin; reads from other origins are CORS business', { timeout: 20000 }, async () => {
  const host = `127.0.0.1:${app.port}`;
  const other = { host, 'user-agent': CHROME, origin: 'http://attacker.example' };
  const w = await put('fromother', other);
  assert.equal(w.status, 403, w.text);
  assert.match((JSON.parse(w.text) as { error: string }).error, /cross-origin PUT refused: Origin "http:\/\/attacker\.example" is not this server/);
  for (const method of ['POST', 'PATCH', 'DELETE']) {
    const r = await request(`${app.base}/api/streams?name=demo&src=x`, { method, headers: other });
    assert.equal(r.status, 403, method);
  }
  assert.equal((await get('/api/streams', other)).status, 200);
  const ours = await put('fromours', { host, 'user-agent': CHROME, origin: `http://${host}` });
  assert.equal(ours.status, 200, ours.text);
  assert.deepEqual(Object.keys((await app.json<Record<string, unknown>>('/api/streams')).body).sort(), ['demo', 'fromours']);
  assert.equal((await request(`${app.base}/api/streams?src=fromours`, { method: 'DELETE', headers: { host, origin: `http://${host}` } })).status, 200);
});

function upgrade(headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=demo`, { headers });
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    ws.once('error', (e) => resolve(`error ${e.message}`));
  });
}

test('the WebSocket: no Origin or our own opens; a foreign Origin or Host is refused with the reason', { timeout: 20000 }, async () => {
  assert.equal(await upgrade({}), 'open');
  assert.equal(await upgrade({ host: `camrelay:${app.port}` }), 'open');
  assert.equal(await upgrade({ origin: `http://127.0.0.1:${app.port}` }), 'open');
  assert.match(await upgrade({ origin: 'http://attacker.example' }), /^403 .*cross-origin WebSocket refused/);
  assert.match(await upgrade({ host: `evil.example:${app.port}`, origin: `http://evil.example:${app.port}` }), /^403 .*Host \\"evil\.example/);
});
