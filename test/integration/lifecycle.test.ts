// Issue 2: backoff against a real failing ffmpeg, 100 viewer cycles back to baseline, graceful
// shutdown, and bad configs refused at startup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CamrelayProcess, nonZero, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { Viewer, HttpError } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264';

test('a source whose ffmpeg fails at once retries with growing jittered delays, one process at a time, until the viewer leaves', { timeout: 40000 }, async () => {
  // /etc/hostname exists (so it is not a missing-path error) but is no media: ffmpeg exits at once.
  const app = await CamrelayProcess.start(`${testConfig({})}  bad:
    sources: ["ffmpeg:/etc/hostname#video=h264"]
    start_timeout: 3s
    backoff: { base: 200ms, max: 1600ms, stable_after: 30s }
`);
  try {
    let maxChildren = 0;
    const sampler = setInterval(() => (maxChildren = Math.max(maxChildren, app.children().length)), 25);
    const v = new Viewer();
    const t0 = Date.now();
    const err = await v.connect(app.base, 'bad').then(() => undefined, (e: unknown) => e);
    await v.close();
    clearInterval(sampler);
    // Logs arrive through a pipe: the stream's return to idle comes after every start and retry.
    await app.waitLog((l) => l.stream === 'bad' && l.msg === 'stream state' && l.state === 'idle', 3000);
    assert.ok(err instanceof HttpError, 'the viewer gets an error');
    assert.equal(err.status, 504);
    assert.match(err.body, /did not start within 3000 ms: ffmpeg exited with code \d+.*Invalid data found when processing input/);
    assert.ok(Date.now() - t0 < 4500);

    const mine = (l: LogLine) => l.stream === 'bad';
    const retries = app.logs.filter((l) => mine(l) && l.msg === 'retrying source');
    const starts = app.logs.filter((l) => mine(l) && l.msg === 'source starting');
    assert.ok(retries.length >= 3, `at least 3 retries in 3 s, saw ${retries.length}`);
    // Ceilings double from base to max; each delay is drawn below its ceiling (full jitter).
    assert.deepEqual(retries.slice(0, 4).map((r) => r.ceiling), [200, 400, 800, 1600].slice(0, Math.min(4, retries.length)));
    for (const r of retries) assert.ok((r.delay as number) >= 0 && (r.delay as number) < (r.ceiling as number), `delay ${r.delay} < ceiling ${r.ceiling}`);
    // Each restart came no sooner than the delay it announced.
    for (let i = 0; i < retries.length && i + 1 < starts.length; i++) {
      const gap = (starts[i + 1]!.time as number) - (retries[i]!.time as number);
      assert.ok(gap >= (retries[i]!.delay as number) - 2, `restart ${i + 1} came ${gap} ms after announcing ${retries[i]!.delay} ms`);
    }
    const delays = retries.map((r) => r.delay as number);
    assert.ok(new Set(delays).size > 1 || delays.length < 2, `jittered delays differ: ${delays.join(', ')}`);
    assert.ok(maxChildren <= 1, `never two ffmpeg at once (saw ${maxChildren})`);

    // The viewer has gone: nothing retries any more (the longest wait would be 1.6 s).
    const count = app.logs.filter((l) => mine(l) && l.msg === 'source starting').length;
    const again = await app.nextLog((l) => mine(l) && l.msg === 'source starting', 2500).then(() => true, () => false);
    assert.equal(again, false, 'no retry after the viewer left');
    assert.equal(app.logs.filter((l) => mine(l) && l.msg === 'source starting').length, count);
    assert.equal(app.children().length, 0);

    // A viewer who gives up mid-start (closes the request) stops the retries at once too.
    const ac = new AbortController();
    const v2 = new Viewer();
    const p = v2.connect(app.base, 'bad', 'json', ac.signal).catch(() => undefined);
    await app.nextLog((l) => mine(l) && l.msg === 'retrying source', 3000);
    const mark = app.logs.length;
    ac.abort();
    await p;
    await v2.close();
    await app.waitLog((l) => l.stream === 'bad' && l.msg === 'stream state' && l.state === 'idle', 3000, mark);
    const after = await app.nextLog((l) => mine(l) && l.msg === 'source starting', 2000).then(() => true, () => false);
    assert.equal(after, false, 'no retry after the viewer aborted');
  } finally {
    assert.equal(await app.stop(), 0);
  }
});

test('100 connect/disconnect cycles leave children, sockets and live objects exactly at baseline', { timeout: 300000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: DEMO }));
  try {
    // fds and sockets are read before the HTTP request for the objects, whose own connection
    // closes a moment after its answer; the baseline is two equal readings in a row.
    const snapshot = async () => ({ children: app.children().length, fds: app.fdTargets(), sockets: app.sockets(), objects: nonZero(await app.objects()) });
    let base = await snapshot();
    await waitFor('a steady baseline', async () => {
      const again = await snapshot();
      const same = JSON.stringify(again) === JSON.stringify(base);
      base = again;
      return same;
    }, 5000);
    const deadline = Date.now() + 240000;
    let cycles = 0;
    for (; cycles < 100 && Date.now() < deadline; cycles++) {
      const v = new Viewer();
      try {
        await v.connect(app.base, 'demo', 'sdp');
        await waitFor(`cycle ${cycles}: first video packet`, () => v.video.length > 0, 5000);
        // Mix clean hang-ups with viewers that just vanish mid-way.
        if (cycles % 10 === 9) await v.close();
        else assert.equal(await v.hangUp(app.base), 200);
      } finally {
        await v.close();
      }
    }
    assert.equal(cycles, 100, `all cycles within the time bound (did ${cycles})`);
    // Exactly, fds included: node-datachannel's thread pool and its wake-up pipes go with the last peer.
    let last = await snapshot();
    await waitFor('back to baseline', async () => JSON.stringify((last = await snapshot())) === JSON.stringify(base), 5000).catch(() => {});
    assert.equal(last.children, 0, 'no ffmpeg left');
    assert.deepEqual(last.sockets, base.sockets, 'UDP/TCP sockets back to baseline');
    assert.deepEqual(last.objects, base.objects, 'live objects back to baseline');
    assert.deepEqual(last.fds, base.fds, 'open fds back to baseline');
  } finally {
    assert.equal(await app.stop(), 0);
  }
});

test('SIGTERM while a viewer watches closes the viewer and ffmpeg, then exits 0', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: DEMO }));
  const v = new Viewer();
  try {
    await v.connect(app.base, 'demo');
    await waitFor('video', () => v.video.length > 0, 5000);
    const [ffmpeg] = app.children();
    assert.ok(ffmpeg);
    assert.equal(await app.stop(), 0);
    assert.throws(() => process.kill(ffmpeg, 0), 'ffmpeg is gone once camrelay has exited');
    assert.ok(app.logs.some((l) => l.msg === 'webrtc session closed' && l.reason === 'server shutdown'), 'the viewer session was closed by the shutdown');
  } finally {
    await v.close();
  }
});

function runWithConfig(yaml: string): Promise<{ code: number | null; stderr: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-badcfg-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, stderr: stderr.replaceAll(file, 'config.yaml') });
    }),
  );
}

test('bad config stops startup with exit status 2 and names the file and line or key', { timeout: 60000 }, async () => {
  const cases: [string, string, RegExp][] = [
    ['YAML syntax error', 'api:\n  listen: ":1984"\nstreams:\n  demo: [unclosed\n', /config error: config\.yaml:\d+:\d+: /],
    ['unknown key', 'api:\n  listen: ":1984"\nwebrtc:\n  timeout: 5s\n', /config error: config\.yaml:4: unknown key "webrtc\.timeout"/],
    ['wrong type', 'api:\n  listen: 1984\n', /config error: config\.yaml:2: api\.listen: expected string, got number/],
  ];
  for (const [what, yaml, message] of cases) {
    const r = await runWithConfig(yaml);
    assert.equal(r.code, 2, `${what}: exit status`);
    assert.match(r.stderr, message, `${what}: message`);
  }
});
