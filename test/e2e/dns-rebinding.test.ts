// DNS rebinding, simulated in headless Chromium: a page of http://evil.example:PORT whose name
// the attacker then points at camrelay (the host-resolver rule maps it to 127.0.0.1). For the
// browser that page is same-origin with camrelay; camrelay must refuse it by its Host header.
// The same script in camrelay's own page at http://127.0.0.1:PORT works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { CHROMIUM, chromiumSkip } from '../helpers/chromium.js';

interface Outcome {
  read: string;
  put: number | string;
  ws: string;
}

// Browser-side code as text: the project typechecks without the DOM library.
const ATTACK = `(async () => {
  const out = {};
  try {
    const r = await fetch('/api/streams');
    out.read = r.status + ' ' + (await r.text()).slice(0, 300);
  } catch (e) { out.read = 'error ' + e; }
  try {
    const r = await fetch('/api/streams?name=planted&src=' + encodeURIComponent('rtsp://10.9.9.9/x'), { method: 'PUT' });
    out.put = r.status;
  } catch (e) { out.put = 'error ' + e; }
  out.ws = await new Promise((resolve) => {
    const ws = new WebSocket('ws://' + location.host + '/api/ws?src=demo');
    const t = setTimeout(() => resolve('timeout'), 5000);
    ws.onopen = () => { clearTimeout(t); ws.close(); resolve('open'); };
    ws.onerror = () => { clearTimeout(t); resolve('refused'); };
  });
  return out;
})()`;

let app: CamrelayProcess;
let browser: Browser;

before(async () => {
  if (chromiumSkip) return;
  app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x180#video=h264' }));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--host-resolver-rules=MAP evil.example 127.0.0.1',
      // Chromium's own Private/Local Network Access blocks a public page's requests to loopback.
      // Firefox and Safari have no such block (nor Chromium for every private target and
      // version): it is turned off so that the test sees camrelay's defence, not the browser's.
      '--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks',
    ],
  });
});
after(async () => {
  await browser?.close();
  if (app) assert.equal(await app.stop(), 0);
});

async function streamNames(): Promise<string[]> {
  return Object.keys((await app.json<Record<string, unknown>>('/api/streams')).body);
}

test('a page on a rebound name cannot read the API, write it, or open the WebSocket', { timeout: 60000, skip: chromiumSkip }, async () => {
  const page: Page = await browser.newPage();
  try {
    const origin = `http://evil.example:${app.port}`;
    // The attacker's own server serves the page; from then on the name resolves to camrelay.
    await page.route(`${origin}/attack.html`, (r) => r.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>cute cats</title>' }));
    await page.goto(`${origin}/attack.html`);
    const out = await page.evaluate<Outcome>(ATTACK);
    assert.match(out.read, /^403 .*Host \\?"evil\.example:\d+\\?" is not one of this server's names/, out.read);
    assert.doesNotMatch(out.read, /testsrc2/);
    assert.equal(out.put, 403);
    assert.equal(out.ws, 'refused');
    assert.deepEqual(await streamNames(), ['demo'], 'nothing was planted');
    // camrelay's own page under that name is refused too (it would carry the same script's powers).
    const r = await page.goto(`${origin}/`);
    assert.equal(r?.status(), 403);
  } finally {
    await page.close();
  }
});

test("the same script in camrelay's own page (http://127.0.0.1:PORT) reads, writes and opens the WebSocket", { timeout: 60000, skip: chromiumSkip }, async () => {
  const page: Page = await browser.newPage();
  try {
    const r = await page.goto(`${app.base}/`);
    assert.equal(r?.status(), 200);
    const out = await page.evaluate<Outcome>(ATTACK);
    assert.match(out.read, /^200 .*testsrc2/);
    assert.equal(out.put, 200);
    assert.equal(out.ws, 'open');
    assert.deepEqual((await streamNames()).sort(), ['demo', 'planted']);
    const del = await page.evaluate<number>(`fetch('/api/streams?src=planted', { method: 'DELETE' }).then((r) => r.status)`);
    assert.equal(del, 200);
  } finally {
    await page.close();
  }
});
