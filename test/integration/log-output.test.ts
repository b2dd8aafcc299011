// camrelay's log goes to stdout, which belongs to whoever started it: a log collector that stalls,
// or a parent that stopped reading, must cost at most some memory, never the service or its exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { camrelayArgs, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A FIFO in `dir` with both ends open, neither blocking. */
function openFifo(dir: string): { reader: number; writer: number } {
  const fifo = path.join(dir, 'stdout');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  return { reader, writer: openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK) };
}

/** A FIFO whose read end is open and never read, filled until a write would block. */
function fullPipe(dir: string): { reader: number; writer: number } {
  const { reader, writer } = openFifo(dir);
  const chunk = Buffer.alloc(4096, 'x');
  for (let i = 0; i < 4096; i++) {
    try {
      writeSync(writer, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return { reader, writer };
      throw e;
    }
  }
  throw new Error('the pipe never filled');
}

async function startOn(stdoutFd: number, dir: string): Promise<{ child: ChildProcess; base: string; stderr: () => string }> {
  const port = await freeTcpPort();
  const yaml = testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x240#video=h264' }).replace('listen: "127.0.0.1:0" }', `listen: "127.0.0.1:${port}" }`);
  assert.match(yaml, new RegExp(`127\\.0\\.0\\.1:${port}`), 'the test config sets api.listen');
  writeFileSync(path.join(dir, 'config.yaml'), yaml);
  const child = spawn(process.execPath, camrelayArgs(path.join(dir, 'config.yaml')), {
    cwd: ROOT,
    stdio: ['ignore', stdoutFd, 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  return { child, base: `http://127.0.0.1:${port}`, stderr: () => err };
}

/** SIGTERM, then the exit code within `ms`, or a failure saying the process did not exit. */
async function stopWithin(child: ChildProcess, ms: number): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const t0 = performance.now();
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    assert.fail(`camrelay did not exit within ${ms} ms of SIGTERM`);
  }
  assert.ok(performance.now() - t0 < ms);
  return code;
}

test('a stdout pipe nobody reads: camrelay still serves, counts what it drops, and exits on SIGTERM', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-log-'));
  const { reader, writer } = fullPipe(dir);
  let child: ChildProcess | undefined;
  try {
    const started = await startOn(writer, dir);
    child = started.child;
    // Its first log line already finds the pipe full.
    const streams = await waitFor(
      'the HTTP API to answer',
      async () => {
        const r = await request(`${started.base}/api/streams`, { timeoutMs: 1000 }).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      30000,
      100,
    );
    assert.ok('demo' in (JSON.parse(streams.text) as object), `the demo stream is listed: ${streams.text}; stderr: ${started.stderr()}`);
    const metrics = await request(`${started.base}/metrics`, { timeoutMs: 5000 });
    assert.match(metrics.text, /^camrelay_log_lines_dropped_total \d+$/m);
    assert.equal(await stopWithin(child, 5000), 0, `exit code 0; stderr: ${started.stderr()}`);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    closeSync(writer);
    closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stdout whose reader has gone (EPIPE): camrelay goes on and exits on SIGTERM', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-log-'));
  const { reader, writer } = openFifo(dir);
  // Nobody will read: every write gets EPIPE (Node ignores SIGPIPE).
  closeSync(reader);
  let child: ChildProcess | undefined;
  let writerOpen = true;
  try {
    const started = await startOn(writer, dir);
    child = started.child;
    closeSync(writer);
    writerOpen = false;
    await waitFor(
      'the HTTP API to answer',
      async () => (await request(`${started.base}/api/streams`, { timeoutMs: 1000 }).catch(() => undefined))?.status === 200 || undefined,
      30000,
      100,
    );
    assert.equal(await stopWithin(child, 5000), 0, `exit code 0; stderr: ${started.stderr()}`);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (writerOpen) closeSync(writer);
    rmSync(dir, { recursive: true, force: true });
  }
});
