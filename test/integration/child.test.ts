import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { pino } from 'pino';
import { ChildProcessOwner, type ChildExit } from '../../src/process/child.js';
import { setRootLogger } from '../../src/core/log.js';
import { liveObjects } from '../../src/core/objects.js';

setRootLogger(pino({ level: 'silent' }));

const NODE = process.execPath;
// The test runner's own pipes (stdout to the parent) are there before any child.
const handles = (): string[] =>
  process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'ProcessWrap' || r === 'PipeWrap').sort();
const BASELINE = handles();
const GRACE = { quit: 150, term: 150 };

/** A process is gone when it no longer exists or is a zombie nobody reaped yet. */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function until(what: string | (() => string), cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function stderrLine(c: ChildProcessOwner, match: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const on = (line: string): void => {
      if (!match.test(line)) return;
      c.off('stderr', on);
      resolve(line);
    };
    c.on('stderr', on);
  });
}

test('exit code and stderr lines of a process that ends by itself', { timeout: 10000 }, async () => {
  const c = new ChildProcessOwner({
    bin: NODE,
    args: ['-e', "process.stderr.write('one\\ntwo\\r\\nthree'); process.exit(3)"],
    label: 'node-exit',
    grace: GRACE,
    stderrLines: 2,
  });
  assert.equal(typeof c.pid, 'number');
  const exits: unknown[][] = [];
  c.on('exit', (...a: unknown[]) => exits.push(a));
  const e = await c.exited;
  assert.deepEqual(e, { code: 3, signal: null });
  assert.deepEqual(c.lastStderr(), ['two', 'three'], 'ring keeps the last lines, the unterminated one too');
  assert.equal(c.describeExit(e), 'node-exit exited with code 3: three');
  assert.equal(exits.length, 1);
  assert.equal(c.closed, false, 'exiting does not close the owner');
  const t0 = Date.now();
  c.close();
  await c.done;
  assert.ok(Date.now() - t0 < 100, 'close after exit settles at once');
  assert.equal(exits.length, 1, "'exit' only once");
});

test("'q' on stdin stops a process that honours it, without signals", { timeout: 10000 }, async () => {
  const script = "process.stdin.on('data', (d) => { if (String(d).includes('q')) { console.error('bye'); process.exit(0); } }); console.error('ready');";
  const c = new ChildProcessOwner({ bin: NODE, args: ['-e', script], label: 'node-q', grace: { quit: 5000, term: 5000 } });
  await stderrLine(c, /ready/);
  const t0 = Date.now();
  c.close();
  await c.done;
  assert.ok(Date.now() - t0 < 3000);
  assert.deepEqual(await c.exited, { code: 0, signal: null });
  assert.deepEqual(c.lastStderr(), ['ready', 'bye']);
});

test('SIGTERM after grace.quit for a process that ignores q', { timeout: 10000 }, async () => {
  const c = new ChildProcessOwner({
    bin: NODE,
    args: ['-e', "setInterval(() => {}, 1000); console.error('ready')"],
    label: 'node-term',
    grace: GRACE,
  });
  await stderrLine(c, /ready/);
  const t0 = Date.now();
  c.close();
  await c.done;
  const took = Date.now() - t0;
  assert.deepEqual(await c.exited, { code: null, signal: 'SIGTERM' });
  assert.ok(took >= GRACE.quit - 5 && took < GRACE.quit + 1000, `stopped after ${took} ms`);
});

test('SIGKILL to the whole group for a process that ignores q and SIGTERM', { timeout: 10000 }, async () => {
  // bash ignores TERM, and so does the grandchild it starts (ignored signals survive exec).
  const c = new ChildProcessOwner({
    bin: 'bash',
    args: ['-c', 'trap "" TERM; sleep 1000 & echo "grandchild $!" >&2; wait'],
    label: 'bash-stubborn',
    grace: GRACE,
  });
  const line = await stderrLine(c, /^grandchild \d+$/);
  const grandchild = Number(line.split(' ')[1]);
  const leader = c.pid!;
  assert.ok(!gone(grandchild) && !gone(leader));
  let exited = false;
  void c.exited.then(() => (exited = true));
  const t0 = Date.now();
  c.close();
  assert.equal(c.closed, true);
  assert.equal(exited, false, 'done waits for the real exit');
  await c.done;
  const took = Date.now() - t0;
  assert.equal(exited, true);
  assert.deepEqual(await c.exited, { code: null, signal: 'SIGKILL' });
  assert.ok(took >= GRACE.quit + GRACE.term - 5, `SIGKILL came after both graces (${took} ms)`);
  await until('the grandchild to die', () => gone(grandchild));
  assert.ok(gone(leader));
});

test('a grandchild left behind by a leader that exits by itself is swept with it', { timeout: 10000 }, async () => {
  const c = new ChildProcessOwner({
    bin: 'bash',
    args: ['-c', 'sleep 1000 & echo "grandchild $!" >&2; exit 0'],
    label: 'bash-orphan',
    grace: GRACE,
  });
  const line = await stderrLine(c, /^grandchild \d+$/);
  const grandchild = Number(line.split(' ')[1]);
  // The orphan holds stderr open, so exited waits for the sweep to close the pipe.
  assert.deepEqual(await c.exited, { code: 0, signal: null });
  await until('the grandchild to die', () => gone(grandchild));
  c.close();
  await c.done;
});

test('a binary that cannot be started folds into exit with a clear error', { timeout: 10000 }, async () => {
  const c = new ChildProcessOwner({ bin: '/nonexistent/ffmpeg', args: ['-version'], label: 'ffmpeg test', grace: GRACE });
  assert.equal(c.pid, undefined);
  const [code, signal, error] = (await once(c, 'exit')) as [number | null, string | null, Error | undefined];
  assert.equal(code, null);
  assert.equal(signal, null);
  assert.match(error?.message ?? '', /could not start ffmpeg test \(\/nonexistent\/ffmpeg\): .*ENOENT/);
  const e: ChildExit = await c.exited;
  assert.equal(c.describeExit(e), error?.message);
  c.close();
  await c.done;
});

test('an argument spawn cannot pass (a NUL byte) folds into exit like a failed spawn; the live count comes back', { timeout: 10000 }, async () => {
  const live = () => liveObjects().ChildProcess ?? 0;
  const before = live();
  // spawn throws synchronously here; the constructor must not (its count would never be released).
  const c = new ChildProcessOwner({ bin: NODE, args: ['-e', 'rtsp://u:secret@h/a\0b'], label: 'node-nul', grace: GRACE });
  assert.equal(c.pid, undefined);
  assert.equal(live(), before + 1, 'counted while its owner holds it');
  const [code, signal, error] = (await once(c, 'exit')) as [number | null, string | null, Error | undefined];
  assert.deepEqual([code, signal], [null, null]);
  assert.match(error?.message ?? '', /could not start node-nul \(.*\): .*null bytes/);
  assert.doesNotMatch(error?.message ?? '', /secret/, 'the refused argument is masked');
  assert.deepEqual(await c.exited, { code: null, signal: null, error });
  c.close();
  await c.done;
  assert.equal(live(), before);

  // The same for the asynchronous failure ('error' from spawn: ENOENT), closed before it arrives.
  const d = new ChildProcessOwner({ bin: '/nonexistent/bin', args: [], label: 'gone', grace: GRACE });
  d.close();
  await d.done;
  assert.match((await d.exited).error?.message ?? '', /ENOENT/);
  assert.equal(live(), before);
});

test('close before the process got going, and close twice', { timeout: 10000 }, async () => {
  const c = new ChildProcessOwner({ bin: NODE, args: ['-e', 'setInterval(() => {}, 1000)'], label: 'node-early', grace: GRACE });
  c.close();
  c.close();
  await c.done;
  // node -e never reads stdin, so 'q' does nothing and SIGTERM ends it.
  assert.deepEqual(await c.exited, { code: null, signal: 'SIGTERM' });
});

test('nothing is left: no live ChildProcess objects, handles or timers', { timeout: 5000 }, async () => {
  assert.equal(liveObjects().ChildProcess ?? 0, 0);
  // libuv closes handles in its close phase, a loop turn after 'exit'; give it that turn.
  await until(
    () => `no handles but the runner's (now: ${handles().join(', ')}; before: ${BASELINE.join(', ')})`,
    () => handles().join() === BASELINE.join(),
    1000,
  );
});

test('a child started with nice runs below camrelay, threads it starts later included', { timeout: 10000 }, async () => {
  // Node starts its worker threads after it reads stdin here: the niceness must reach them too.
  const script = "process.stdin.once('data', () => { new (require('node:worker_threads').Worker)('setInterval(() => {}, 1000)', { eval: true }); console.error('worker'); }); setInterval(() => {}, 1000);";
  const c = new ChildProcessOwner({ bin: NODE, args: ['-e', script], label: 'node-nice', grace: GRACE, nice: 10 });
  try {
    const pid = c.pid!;
    const niceOf = (stat: string): number => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    assert.equal(niceOf(readFileSync(`/proc/${pid}/stat`, 'utf8')), 10, 'the process itself');
    const started = stderrLine(c, /^worker$/);
    c.stdin!.write('go\n');
    await started;
    const tasks = readdirSync(`/proc/${pid}/task`);
    assert.ok(tasks.length > 1, 'threads started');
    for (const t of tasks) assert.equal(niceOf(readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')), 10, `thread ${t}`);
  } finally {
    c.close();
    await c.done;
  }
});

test('a child started with idle runs under SCHED_IDLE, threads it starts later included, and nice as well', { timeout: 10000 }, async () => {
  // SCHED_IDLE is policy 5 (linux/sched.h); field 41 of /proc/<pid>/stat.
  const script = "process.stdin.once('data', () => { new (require('node:worker_threads').Worker)('setInterval(() => {}, 1000)', { eval: true }); console.error('worker'); }); setInterval(() => {}, 1000);";
  const c = new ChildProcessOwner({ bin: NODE, args: ['-e', script], label: 'node-idle', grace: GRACE, nice: 19, idle: true });
  try {
    const pid = c.pid!;
    const field = (stat: string, n: number): number => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]);
    const started = stderrLine(c, /^worker$/);
    c.stdin!.write('go\n');
    await started;
    const tasks = readdirSync(`/proc/${pid}/task`);
    assert.ok(tasks.length > 1, 'threads started');
    for (const t of tasks) {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      assert.equal(field(stat, 41), 5, `thread ${t} runs under SCHED_IDLE`);
      assert.equal(field(stat, 19), 19, `thread ${t} at nice 19`);
    }
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'node', 'chrt exec()ed the program in place: the pid is the program');
  } finally {
    c.close();
    await c.done;
  }
});
