// What keeps `npm start`'s resident set small (issue 17, measured in docs/benchmarks.md
// "memory"), checked as facts about the bundle rather than as an RSS threshold (RSS is a
// benchmark figure): a camrelay nobody has watched has loaded neither WebRTC library (werift's
// chunk only runs when werift is the backend; node-datachannel's shared object only joins the
// process with the first peer), and zod and mime-db are bundled cut to what camrelay reads,
// with the answers a user sees unchanged (config errors, the web page's content types).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';
import { startFlags } from '../../bench/bundle.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const OUT = path.join(ROOT, '.bundle-test-memory');
const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';
let tmp = '';

before(() => {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), OUT], { cwd: ROOT, stdio: 'pipe', timeout: 60000 });
  tmp = mkdtempSync(path.join(tmpdir(), 'camrelay-memory-'));
  // A module hook that writes down every file the process evaluates as a module, to a file named
  // by the environment: the bundle's chunks and node-datachannel's ESM wrapper among them.
  writeFileSync(
    path.join(tmp, 'hooks.mjs'),
    "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  if (url.startsWith('file:')) appendFileSync(process.env.LOADED_LIST, url + '\\n');\n  return next(url, context);\n}\n",
  );
  writeFileSync(path.join(tmp, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(path.join(tmp, 'hooks.mjs')).href)});\n`);
});

after(() => {
  rmSync(OUT, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The bundle on `backend`, with npm start's flags and the module hook writing to `list`. */
function startBundle(backend: 'auto' | 'werift', list: string): Promise<CamrelayProcess> {
  writeFileSync(list, '');
  const yaml = testConfig({ demo: DEMO }).replace(/^  backend: .*$/m, `  backend: ${backend}`);
  return CamrelayProcess.start(yaml, { bundle: OUT, nodeFlags: [...startFlags(), '--import', path.join(tmp, 'register.mjs')], env: { ...process.env, LOADED_LIST: list } });
}

/** Module files evaluated so far, relative to the repository. */
function modulesLoaded(list: string): string[] {
  return readFileSync(list, 'utf8').split('\n').filter(Boolean).map((u) => path.relative(ROOT, new URL(u).pathname));
}

/** Whether node-datachannel's native module is mapped into the process. */
function ndcMapped(pid: number): boolean {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('node_datachannel.node');
}

const isWeriftChunk = (f: string) => /^\.bundle-test-memory\/werift-backend-\w+\.js$/.test(f);

test('on the default backend, an idle camrelay holds neither WebRTC library; the first viewer loads node-datachannel, never werift', { timeout: 60000 }, async () => {
  const list = path.join(tmp, 'auto.txt');
  const app = await startBundle('auto', list);
  try {
    const chosen = await app.waitLog((l) => l.msg === 'webrtc backend', 1000);
    assert.equal(chosen.backend, 'node-datachannel', 'node-datachannel is the backend (it loads here)');
    const idle = modulesLoaded(list);
    assert.ok(idle.includes('.bundle-test-memory/main.js'), `the hook saw the bundle: ${idle.join(', ')}`);
    assert.deepEqual(idle.filter(isWeriftChunk), [], 'werift\'s chunk is not evaluated');
    assert.deepEqual(idle.filter((f) => f.includes('node-datachannel')), [], 'node-datachannel\'s JS is not loaded before a peer');
    assert.equal(ndcMapped(app.pid), false, 'node-datachannel\'s shared object is not in the process before a peer');

    const v = new Viewer();
    await v.connect(app.base, 'demo', 'sdp');
    await waitFor('50 H.264 packets incl. a keyframe with SPS/PPS', () => v.video.length >= 50 && v.sawKeyframeWithParams(), 10000);
    assert.equal(ndcMapped(app.pid), true, 'the first peer loaded node-datachannel');
    await app.waitLog((l) => l.msg === 'node-datachannel loaded (first peer)', 1000);
    assert.deepEqual(modulesLoaded(list).filter(isWeriftChunk), [], 'werift\'s chunk is still not evaluated');
    assert.equal(await v.hangUp(app.base), 200);
    await v.close();
  } finally {
    assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  }
});

test('with webrtc.backend werift, werift\'s chunk runs and node-datachannel never joins the process', { timeout: 60000 }, async () => {
  const list = path.join(tmp, 'werift.txt');
  const app = await startBundle('werift', list);
  try {
    const chosen = await app.waitLog((l) => l.msg === 'webrtc backend', 1000);
    assert.equal(chosen.backend, 'werift');
    assert.equal(modulesLoaded(list).filter(isWeriftChunk).length, 1, 'werift\'s chunk is evaluated');
    assert.equal(ndcMapped(app.pid), false, 'node-datachannel is not loaded (not even checked: it is not the backend)');
  } finally {
    assert.equal(await app.stop(), 0);
  }
});

test('zod and mime-db are bundled cut to what camrelay reads', () => {
  const main = readFileSync(path.join(OUT, 'main.js'), 'utf8');
  // esbuild names a module's namespace `<file>_exports`; zod's locales come as one namespace.
  assert.doesNotMatch(main, /\blocales_exports\b/, 'no zod locale tables');
  assert.doesNotMatch(main, /\bfromJSONSchema\b/, 'no JSON Schema import');
  assert.doesNotMatch(main, /application\/vnd\.ms-excel/, 'no mime type that neither web/ nor src/ uses');
  assert.match(main, /"application\/json":\{/, 'the JSON type (with its charset) is kept');
});

test('the cut bundle answers as src/ does: a config error\'s message, the web page\'s content types', { timeout: 60000 }, async () => {
  const bad = path.join(tmp, 'bad.yaml');
  writeFileSync(bad, 'api: { listen: 5 }\nstreams:\n  a: 3\n  b: { sources: [ "rtsp://x" ], idle_timeout: soon }\n');
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = execFile(process.execPath, [...args, '--config', bad], { cwd: ROOT, timeout: 30000 }, (_e, _out, stderr) => resolve({ code: c.exitCode, stderr }));
    });
  const [fromBundle, fromSrc] = await Promise.all([run([path.join(OUT, 'main.js')]), run(['--import', 'tsx', path.join(ROOT, 'src/main.ts')])]);
  assert.equal(fromSrc.code, 2, fromSrc.stderr);
  assert.match(fromSrc.stderr, /config error: .*bad\.yaml:1: api\.listen/, 'zod\'s message reaches the user');
  assert.equal(fromBundle.code, 2);
  assert.equal(fromBundle.stderr, fromSrc.stderr, 'the bundle says the same');

  // Expected: express.static over web/ with the whole mime-db (this process loads the package itself).
  const ref = express().use(express.static(path.join(ROOT, 'web'))).listen(0, '127.0.0.1');
  await once(ref, 'listening');
  const app = await startBundle('auto', path.join(tmp, 'static.txt'));
  try {
    const files = readdirSync(path.join(ROOT, 'web'), { recursive: true }).map(String).filter((f) => path.extname(f));
    assert.ok(files.length > 3, 'web/ has files');
    for (const f of files) {
      const want = await request(`http://127.0.0.1:${(ref.address() as AddressInfo).port}/${f}`);
      const got = await request(`${app.base}/${f}`);
      assert.equal(got.status, 200, f);
      assert.equal(got.headers['content-type'], want.headers['content-type'], `${f}: the Content-Type express gives with the whole mime-db`);
    }
  } finally {
    ref.close();
    assert.equal(await app.stop(), 0);
  }
});
