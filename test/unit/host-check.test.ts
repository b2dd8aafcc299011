// The Host/Origin rules for browser requests (DNS rebinding), as pure functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBrowserRequest, fromBrowser, hostAllowed, hostName, ownNames, sameOrigin, type BrowserPolicy } from '../../src/api/host-check.js';

const policy: BrowserPolicy = { allowedHosts: ['cam.example.org', '*.home.arpa'], origin: '' };
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36';

test('only requests that carry a browser sign are browser requests', { timeout: 5000 }, () => {
  assert.equal(fromBrowser({ host: 'x' }), false);
  assert.equal(fromBrowser({ host: 'x', 'user-agent': 'curl/8.5.0' }), false);
  assert.equal(fromBrowser({ host: 'x', 'user-agent': 'HomeAssistant/2024.12 aiohttp/3.11 Python/3.12' }), false);
  assert.equal(fromBrowser({ host: 'x', origin: 'http://x' }), true);
  assert.equal(fromBrowser({ host: 'x', 'sec-fetch-site': 'same-origin' }), true);
  assert.equal(fromBrowser({ host: 'x', referer: 'http://x/' }), true);
  // Chromium's same-origin GET over plain http to a rebound name: no Origin, no Sec-Fetch-*.
  assert.equal(fromBrowser({ host: 'x', 'user-agent': CHROME }), true);
});

test('Host names: IP literals, localhost, our own names and allowed_hosts pass; others do not', { timeout: 5000 }, () => {
  const own = ownNames('nas.lan');
  assert.deepEqual(own, ['nas.lan', 'nas', 'nas.local']);
  const ok = (h: string) => hostAllowed(hostName(h)!, policy, own);
  for (const h of ['127.0.0.1', '127.0.0.1:1984', '192.168.1.20:1984', '[::1]:1984', '[fe80::1]', 'localhost:1984', 'LOCALHOST', 'cam.localhost:1984', 'nas', 'nas.lan:1984', 'nas.local', 'cam.example.org:443', 'cam.home.arpa', 'home.arpa']) {
    assert.ok(ok(h), h);
  }
  for (const h of ['evil.example:1984', 'nas.evil.example', 'localhost.evil.example', 'example.org', '1.2.3.4.nip.io', 'xhome.arpa']) assert.equal(ok(h), false, h);
  for (const h of ['', 'a/b', 'user@127.0.0.1', 'a b']) assert.equal(hostName(h), undefined, h);
});

test('same origin: Origin host:port equals Host, default ports ignored', { timeout: 5000 }, () => {
  assert.ok(sameOrigin('http://127.0.0.1:1984', '127.0.0.1:1984'));
  assert.ok(sameOrigin('https://cam.example.org', 'cam.example.org:443'));
  assert.ok(sameOrigin('http://[::1]:1984', '[::1]:1984'));
  assert.equal(sameOrigin('http://127.0.0.1:8123', '127.0.0.1:1984'), false);
  assert.equal(sameOrigin('http://evil.example:1984', '127.0.0.1:1984'), false);
  assert.equal(sameOrigin('null', '127.0.0.1:1984'), false);
  assert.equal(sameOrigin('file://', '127.0.0.1:1984'), false);
});

test('checkBrowserRequest: Host for every browser request, Origin on writes and upgrades, nothing for other clients', { timeout: 5000 }, () => {
  const evil = { host: 'evil.example:1984', 'user-agent': CHROME };
  assert.equal(checkBrowserRequest('GET', evil, policy)?.reason, 'host');
  assert.match(checkBrowserRequest('GET', evil, policy)!.message, /Host "evil\.example:1984".*api\.allowed_hosts/);
  // Not a browser: a foreign name is its business.
  assert.equal(checkBrowserRequest('PUT', { host: 'camrelay:1984', 'user-agent': 'curl/8' }, policy), undefined);
  // Same origin works, for reads and writes.
  const page = { host: '127.0.0.1:1984', origin: 'http://127.0.0.1:1984', 'user-agent': CHROME };
  for (const m of ['GET', 'PUT', 'POST', 'PATCH', 'DELETE']) assert.equal(checkBrowserRequest(m, page, policy), undefined, m);
  assert.equal(checkBrowserRequest('GET', page, policy, true), undefined);
  // Another site's page: may not write, may not open the WebSocket; a GET is CORS's business.
  const other = { host: '127.0.0.1:1984', origin: 'http://attacker.example', 'user-agent': CHROME };
  assert.equal(checkBrowserRequest('GET', other, policy), undefined);
  for (const m of ['PUT', 'POST', 'PATCH', 'DELETE']) assert.equal(checkBrowserRequest(m, other, policy)?.reason, 'origin', m);
  assert.equal(checkBrowserRequest('GET', other, policy, true)?.reason, 'origin');
  assert.match(checkBrowserRequest('PUT', other, policy)!.message, /Origin "http:\/\/attacker\.example" is not this server \(Host "127\.0\.0\.1:1984"\)/);
  // The one switch issue 13's api.origin: "*" turns.
  assert.equal(checkBrowserRequest('PUT', other, { ...policy, origin: '*' }), undefined);
  assert.equal(checkBrowserRequest('PUT', evil, { ...policy, origin: '*' })?.reason, 'host');
});
