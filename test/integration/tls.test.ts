// Issue 18: HTTPS for the API, the page and /api/ws (go2rtc's api.tls_listen, tls_cert, tls_key),
// so that a browser on another machine has the secure context its microphone needs. A real
// certificate made by the openssl CLI, real camrelay processes, loopback only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket, type RawData } from 'ws';
import { CamrelayProcess, camrelayArgs, nonZero, testConfig } from '../helpers/camrelay-process.js';
import { JsonLines, type LogLine } from '../helpers/json-lines.js';
import { waitEvent, waitFor } from '../helpers/wait.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
let dir = '';
let certFile = '';
let keyFile = '';
let otherKeyFile = '';
let cert = '';

/** The body lines of a PEM (its base64), which no log line may contain. */
const pemBody = (pem: string): string[] => pem.split('\n').filter((l) => l && !l.startsWith('-----'));

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'camrelay-tls-'));
  certFile = path.join(dir, 'cert.pem');
  keyFile = path.join(dir, 'key.pem');
  otherKeyFile = path.join(dir, 'other-key.pem');
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15000 });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=camrelay-test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', otherKeyFile]);
  cert = readFileSync(certFile, 'utf8');
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** testConfig's api block with `fields` added (flow-mapping text). */
function withApi(fields: string, streams: Record<string, string> = {}): string {
  const base = testConfig(streams);
  const yaml = base.replace('api: { listen: "127.0.0.1:0" }', `api: { listen: "127.0.0.1:0", ${fields} }`);
  assert.notEqual(yaml, base, 'testConfig still starts with its api block');
  return yaml;
}

const tlsFields = () => `tls_listen: "127.0.0.1:0", tls_cert: ${JSON.stringify(certFile)}, tls_key: ${JSON.stringify(keyFile)}`;

async function tlsPort(app: { waitLog(m: (l: LogLine) => boolean, ms?: number): Promise<LogLine> }): Promise<number> {
  const l = await app.waitLog((x) => x.msg === 'api tls listening', 5000);
  return Number(String(l.listen).split(':').pop());
}

/** GET over HTTPS trusting only the test's certificate; no keep-alive. */
function httpsGet(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    // A Host header of another name would become the name checked against the certificate (SNI):
    // the certificate's issuer is still checked, its name is not.
    const otherHost = headers.host !== undefined && { checkServerIdentity: () => undefined };
    const req = https.get({ host: '127.0.0.1', port, path: urlPath, ca: cert, agent: false, headers: { connection: 'close', ...headers }, timeout: 10000, ...otherHost }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET https://127.0.0.1:${port}${urlPath}: no answer in 10 s`)));
    req.on('error', reject);
  });
}

function wss(port: number, opts: { origin?: string } = {}): WebSocket {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/api/ws?src=demo`, { ca: cert, ...opts });
  ws.on('error', () => undefined);
  return ws;
}

/** Ends a socket in any state (a handshake under way included) and waits for its 'close'. */
async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  // Not events.once: terminating a handshake emits 'error' before 'close'.
  const closed = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the WebSocket did not close within 5 s')), 5000);
    ws.once('close', () => (clearTimeout(t), resolve()));
  });
  ws.terminate();
  await closed;
}

const refused = (port: number): Promise<string> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve('connected')));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

test('HTTPS beside HTTP: /api, the page and /api/ws answer over TLS with the same checks and header deadline, HTTP still answers, and everything is released', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(withApi(`${tlsFields()}, header_timeout: 500ms`, { demo: 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264' }));
  let ws: WebSocket | undefined;
  try {
    const port = await tlsPort(app);
    assert.ok(port > 0 && port !== app.port, `its own port (https ${port}, http ${app.port})`);
    const line = app.logs.find((l) => l.msg === 'api tls listening')!;
    assert.equal(line.cert, certFile);
    assert.match(String(line.subject), /CN=camrelay-test/);
    const baseline = { sockets: app.sockets(), fds: app.fds(), objects: nonZero(await app.objects()) };

    const api = await httpsGet(port, '/api');
    assert.equal(api.status, 200);
    const info = JSON.parse(api.text) as { version: string; host: string };
    assert.equal(info.version, '1.9.14');
    assert.equal(info.host, `127.0.0.1:${port}`);
    const page = await httpsGet(port, '/');
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.text, /<html/i);
    // The Host rule of HTTP holds on HTTPS too (a browser naming a foreign Host: DNS rebinding).
    const rebound = await httpsGet(port, '/api', { host: 'evil.example', 'user-agent': 'Mozilla/5.0' });
    assert.equal(rebound.status, 403);

    // WebSocket signalling over TLS: opens, and a message that is not JSON gets go2rtc's error.
    ws = wss(port);
    const got: string[] = [];
    ws.on('message', (d: RawData) => got.push(d.toString()));
    await waitEvent(ws, 'open', 5000);
    const closed = waitEvent<[number, Buffer]>(ws, 'close', 5000);
    ws.send('{"type": webrtc');
    const [code] = await closed;
    assert.equal(code, 1007);
    assert.equal(got.length, 1, got.join('\n'));
    const msg = JSON.parse(got[0]!) as { type: string; value: string };
    assert.equal(msg.type, 'error');
    assert.match(msg.value, /^webrtc: bad JSON/);
    // The Origin rule of upgrades holds too.
    const foreign = wss(port, { origin: 'https://evil.example' });
    const [, res] = await waitEvent<[unknown, { statusCode?: number }]>(foreign, 'unexpected-response', 5000);
    assert.equal(res.statusCode, 403);
    await closeWs(foreign);

    // A TCP connection that never starts its handshake is cut at api.header_timeout.
    const silent = net.connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    const t0 = Date.now();
    await waitEvent(silent, 'connect', 5000);
    await waitEvent(silent, 'close', 5000);
    assert.ok(Date.now() - t0 < 3000, `cut after ${Date.now() - t0} ms`);
    await app.waitLog((l) => l.msg.startsWith('api.header_timeout: cut an HTTPS connection'), 2000);

    const plain = await app.json<{ host: string }>('/api');
    assert.equal(plain.status, 200, 'HTTP answers beside HTTPS');
    assert.equal(plain.body.host, `127.0.0.1:${app.port}`);

    // Every TLS connection is gone again, and nothing else was left behind.
    await waitFor('sockets back to the baseline', () => {
      const now = app.sockets();
      return now.tcp === baseline.sockets.tcp && now.other === baseline.sockets.other;
    }, 5000);
    await waitFor('fds back to the baseline', () => app.fds() === baseline.fds, 5000);
    assert.deepEqual(nonZero(await app.objects()), baseline.objects);
    assert.equal(await app.stop(), 0);
    assert.equal(await refused(port), 'ECONNREFUSED', 'no HTTPS listener after stop');
  } finally {
    if (ws) await closeWs(ws);
    await app.stop();
  }
});

test('api.max_connections bounds HTTP and HTTPS together, and an open wss:// socket is busy, not idle', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(withApi(`${tlsFields()}, max_connections: 2`, { demo: 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264' }));
  const sockets: WebSocket[] = [];
  try {
    const port = await tlsPort(app);
    for (let i = 0; i < 2; i++) {
      const ws = wss(port);
      sockets.push(ws);
      await waitEvent(ws, 'open', 5000);
    }
    // Both places are taken by WebSockets (never evicted): a new HTTP connection is closed at accept.
    await assert.rejects(app.json('/api'), (e: NodeJS.ErrnoException) => ['ECONNRESET', 'EPIPE'].includes(e.code ?? '') || /socket hang up/.test(e.message));
    assert.ok(sockets.every((s) => s.readyState === WebSocket.OPEN), 'the wss:// sockets stay open');
    await closeWs(sockets.pop()!);
    await waitFor('a place again', async () => (await app.json('/api').catch(() => ({ status: 0 }))).status === 200, 5000);
  } finally {
    for (const s of sockets) await closeWs(s);
    await app.stop();
  }
});

test('api.listen "" serves HTTPS only (go2rtc), with the key and certificate inline, behind the API password', { timeout: 60000 }, async () => {
  const cfgDir = mkdtempSync(path.join(tmpdir(), 'camrelay-tls-only-'));
  const key = readFileSync(keyFile, 'utf8');
  const indent = (pem: string) => pem.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
  const base = testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264' });
  const yaml = base.replace('api: { listen: "127.0.0.1:0" }', `api:\n  listen: ""\n  username: admin\n  password: secret\n  tls_listen: "127.0.0.1:0"\n  tls_cert: |\n${indent(cert)}\n  tls_key: |\n${indent(key)}`);
  assert.notEqual(yaml, base);
  const file = path.join(cfgDir, 'config.yaml');
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, camrelayArgs(file), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = new JsonLines(child);
  const exited = once(child, 'exit') as Promise<[number | null]>;
  try {
    await log.wait((l) => l.msg === 'camrelay ready', 15000);
    const port = await tlsPort({ waitLog: (m, ms = 5000) => log.wait(m, ms) });
    const line = log.lines.find((l) => l.msg === 'api tls listening')!;
    assert.equal(line.cert, 'inline');
    assert.equal(line.key, 'inline');
    assert.ok(!log.lines.some((l) => l.msg === 'api listening'), 'no HTTP listener');
    const auth = { authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` };
    assert.equal((await httpsGet(port, '/api')).status, 401, 'Basic auth over HTTPS as over HTTP');
    assert.equal((await httpsGet(port, '/api', auth)).status, 200);
    const anonymous = wss(port);
    const [, res] = await waitEvent<[unknown, { statusCode?: number }]>(anonymous, 'unexpected-response', 5000);
    assert.equal(res.statusCode, 401, 'and on the wss:// upgrade');
    await closeWs(anonymous);
    const ws = new WebSocket(`wss://127.0.0.1:${port}/api/ws?src=demo`, { ca: cert, headers: auth });
    ws.on('error', () => undefined);
    await waitEvent(ws, 'open', 5000);
    await closeWs(ws);
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
    const [code] = await exited;
    clearTimeout(killer);
    assert.equal(code, 0);
    const out = JSON.stringify(log.lines);
    for (const l of pemBody(key)) assert.ok(!out.includes(l), 'no line of the key is logged');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(cfgDir, { recursive: true, force: true });
  }
});

/** Runs camrelay on `yaml` until it exits (at most 20 s); its exit code and all it wrote (log lines as `msg: err`). */
async function runToExit(yaml: string): Promise<{ code: number | null; out: string }> {
  const cfgDir = mkdtempSync(path.join(tmpdir(), 'camrelay-tls-bad-'));
  const file = path.join(cfgDir, 'config.yaml');
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), '--config', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20000);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    const text = out
      .split('\n')
      .map((line) => {
        try {
          const l = JSON.parse(line) as LogLine;
          return l.err === undefined ? l.msg : `${l.msg}: ${String(l.err)}`;
        } catch {
          return line;
        }
      })
      .join('\n');
    return { code, out: text };
  } finally {
    clearTimeout(killer);
    rmSync(cfgDir, { recursive: true, force: true });
  }
}

test('a bad HTTPS setting stops startup with a message naming the key and the path or reason, never the key', { timeout: 120000 }, async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const takenPort = (taken.address() as net.AddressInfo).port;
  const garbage = path.join(dir, 'garbage.pem');
  writeFileSync(garbage, 'this is not a certificate\n');
  const aDir = path.join(dir, 'a-directory');
  mkdirSync(aDir, { recursive: true });
  const missing = path.join(dir, 'missing.pem');
  const otherKey = readFileSync(otherKeyFile, 'utf8');
  const q = JSON.stringify;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const cases: { what: string; api: string; code: number; message: RegExp }[] = [
    { what: 'tls_listen without a key', api: `tls_listen: "127.0.0.1:0", tls_cert: ${q(certFile)}`, code: 2, message: /config error: .*api\.tls_listen is set but api\.tls_key is not/ },
    { what: 'tls_listen without cert and key', api: 'tls_listen: "127.0.0.1:0"', code: 2, message: /api\.tls_listen is set but api\.tls_cert is not/ },
    { what: 'a missing cert file', api: `tls_listen: "127.0.0.1:0", tls_cert: ${q(missing)}, tls_key: ${q(keyFile)}`, code: 1, message: new RegExp(`api\\.tls_cert "${esc(missing)}": file not found`) },
    { what: 'an unreadable key path (a directory)', api: `tls_listen: "127.0.0.1:0", tls_cert: ${q(certFile)}, tls_key: ${q(aDir)}`, code: 1, message: new RegExp(`api\\.tls_key "${esc(aDir)}": is a directory`) },
    { what: 'a cert that is not PEM', api: `tls_listen: "127.0.0.1:0", tls_cert: ${q(garbage)}, tls_key: ${q(keyFile)}`, code: 1, message: new RegExp(`api\\.tls_cert "${esc(garbage)}": not a PEM certificate`) },
    { what: 'a key that is not PEM', api: `tls_listen: "127.0.0.1:0", tls_cert: ${q(certFile)}, tls_key: ${q(garbage)}`, code: 1, message: new RegExp(`api\\.tls_key "${esc(garbage)}": not a PEM private key`) },
    { what: 'an inline key of another certificate', api: `tls_listen: "127.0.0.1:0", tls_cert: ${q(certFile)}, tls_key: ${q(otherKey)}`, code: 1, message: new RegExp(`api\\.tls_key \\(inline PEM\\): does not match api\\.tls_cert "${esc(certFile)}"`) },
    { what: 'a key on one line', api: `tls_listen: "127.0.0.1:0", tls_cert: ${q(certFile)}, tls_key: ${q(otherKey.replace(/\n/g, ' '))}`, code: 1, message: /api\.tls_key: looks like PEM text on a single line/ },
    { what: 'tls_listen in use', api: `tls_listen: "127.0.0.1:${takenPort}", tls_cert: ${q(certFile)}, tls_key: ${q(keyFile)}`, code: 1, message: new RegExp(`api\\.tls_listen "127\\.0\\.0\\.1:${takenPort}": address already in use`) },
  ];
  try {
    // Two at a time: each is a node process starting tsx.
    const results: Awaited<ReturnType<typeof runToExit>>[] = [];
    for (let i = 0; i < cases.length; i += 2) results.push(...(await Promise.all(cases.slice(i, i + 2).map((c) => runToExit(withApi(c.api))))));
    cases.forEach((c, i) => {
      const r = results[i]!;
      assert.equal(r.code, c.code, `${c.what}: exit status (output: ${r.out})`);
      assert.match(r.out, c.message, `${c.what}: message`);
      assert.doesNotMatch(r.out, /^camrelay ready/m, `${c.what}: never ready`);
      for (const l of pemBody(otherKey)) assert.ok(!r.out.includes(l), `${c.what}: no line of the key in the output`);
    });
  } finally {
    await new Promise<void>((r) => taken.close(() => r()));
  }
});
