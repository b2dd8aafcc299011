// camrelay under a small open-files limit (prlimit --nofile=256:256), as in a container with a
// low ulimit: the limit is logged at start; with api.max_connections below it a flood of idle
// connections leaves the API answering; a cap above it is lowered to fit; and when something else
// (here RTSP connections) uses the last fds, that is logged once per interval, not per
// connection, and counted (libuv drops the connections it cannot accept without telling Node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { camrelayArgs, testConfig } from '../helpers/camrelay-process.js';
import { JsonLines, type LogLine } from '../helpers/json-lines.js';
import { request } from '../helpers/http.js';
import { openRawConnections } from '../helpers/raw-connections.js';
import { waitFor } from '../helpers/wait.js';

const PRLIMIT = '/usr/bin/prlimit';
const skip = existsSync(PRLIMIT) ? false : 'prlimit (util-linux) not installed';
const ROOT = path.resolve(import.meta.dirname, '..', '..');

interface Limited {
  child: ChildProcess;
  log: JsonLines<LogLine>;
  port: number;
  rtspPort: number;
  stop(): Promise<number | null>;
}

async function startLimited(api: string, rtsp = ''): Promise<Limited> {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-fd-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x180#video=h264' }).replace('api: { listen: "127.0.0.1:0" }', `api: { listen: "127.0.0.1:0", ${api} }`).replace('rtsp: { listen: "127.0.0.1:0" }', `rtsp: { listen: "127.0.0.1:0"${rtsp ? `, ${rtsp}` : ''} }`));
  const child = spawn(PRLIMIT, ['--nofile=256:256', process.execPath, ...camrelayArgs(file)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = new JsonLines<LogLine>(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await log.wait((l) => l.msg === 'api listening', 20000);
  const rtspReady = await log.wait((l) => l.msg === 'RTSP server listening', 5000);
  await log.wait((l) => l.msg === 'camrelay ready', 5000);
  return {
    child,
    log,
    port: Number(String(ready.listen).split(':').pop()),
    rtspPort: Number(String(rtspReady.address).split(':').pop()),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      const code = await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

test('under a 256 fd limit, api.max_connections 100 keeps the API answering through 300 idle connections', { timeout: 60000, skip }, async () => {
  const app = await startLimited('max_connections: 100');
  const socks: net.Socket[] = [];
  try {
    const limit = await app.log.wait((l) => typeof l.msg === 'string' && l.msg.startsWith('open-files limit'), 1000);
    assert.equal(limit.soft, 256);
    socks.push(...(await openRawConnections(app.port, 300)));
    const t0 = Date.now();
    const r = await request(`http://127.0.0.1:${app.port}/api`, { timeoutMs: 3000 });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
    await app.log.wait((l) => typeof l.msg === 'string' && l.msg.startsWith('api.max_connections reached'), 2000);
    assert.equal(app.log.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('out of file descriptors')), false);
  } finally {
    for (const s of socks) s.destroy();
    assert.equal(await app.stop(), 0);
  }
});

const said = (app: Limited, start: string) => app.log.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(start));

test('api.max_connections above what the fd limit allows is lowered to fit, and a flood still leaves the API answering', { timeout: 60000, skip }, async () => {
  const app = await startLimited('max_connections: 2000');
  const socks: net.Socket[] = [];
  try {
    const line = await app.log.wait((l) => typeof l.msg === 'string' && l.msg.includes('leaves no room for api.max_connections 2000'), 1000);
    assert.equal(line.api_connections_used, 128);
    socks.push(...(await openRawConnections(app.port, 300)));
    const r = await request(`http://127.0.0.1:${app.port}/api`, { timeoutMs: 3000 });
    assert.equal(r.status, 200);
    assert.equal(said(app, 'out of file descriptors').length, 0);
  } finally {
    for (const s of socks) s.destroy();
    assert.equal(await app.stop(), 0);
  }
});

test('fds used up by other connections (RTSP) are logged once per interval and counted; camrelay stays up and recovers', { timeout: 60000, skip }, async () => {
  const app = await startLimited('max_connections: 50', 'max_connections: 1000');
  const socks: net.Socket[] = [];
  try {
    socks.push(...(await openRawConnections(app.rtspPort, 300)));
    const line = await app.log.wait((l) => typeof l.msg === 'string' && l.msg.startsWith('out of file descriptors'), 8000);
    assert.equal(line.soft, 256);
    for (const s of socks) s.destroy();
    await waitFor('the API answers once the flood is gone', async () => (await request(`http://127.0.0.1:${app.port}/api`, { timeoutMs: 1000 })).status === 200, 10000, 100);
    const m = await request(`http://127.0.0.1:${app.port}/metrics`);
    const fd = /camrelay_api_refused_total\{reason="fd_limit"\} (\d+)/.exec(m.text);
    assert.ok(fd && Number(fd[1]) >= 1, `fd_limit counted: ${fd?.[0]}`);
    // However many ticks saw it, within the interval there is one line.
    assert.equal(said(app, 'out of file descriptors').length, 1);
    assert.equal(app.child.exitCode, null);
  } finally {
    for (const s of socks) s.destroy();
    assert.equal(await app.stop(), 0);
  }
});
