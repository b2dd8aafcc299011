// What `npm start` runs: the bundle of scripts/build.mjs started with plain node. The rest of the
// suite runs src/ through tsx; this file checks that bundling loses nothing a user would see:
// paths found from the code's location (web/, package.json), the lazily loaded werift chunk,
// the native node-datachannel module, ffmpeg children and their end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';
import { startEnv, startFlags } from '../../bench/bundle.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const OUT = path.join(ROOT, '.bundle-test');
const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';

before(() => {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), OUT], { cwd: ROOT, stdio: 'pipe', timeout: 60000 });
});

after(() => rmSync(OUT, { recursive: true, force: true }));

async function playsDemo(backend: 'auto' | 'werift'): Promise<void> {
  const yaml = testConfig({ demo: DEMO }).replace(/^  backend: .*$/m, `  backend: ${backend}`);
  const env = startEnv();
  const app = await CamrelayProcess.start(yaml, { bundle: OUT, nodeFlags: startFlags(), env });
  try {
    const argv = readFileSync(`/proc/${app.pid}/cmdline`, 'utf8').split('\0');
    assert.deepEqual(argv.slice(1, argv.indexOf('--config')), [...startFlags(), path.join(OUT, 'main.js')], 'camrelay runs the bundle with npm start\'s node flags');
    const environ = readFileSync(`/proc/${app.pid}/environ`, 'utf8').split('\0');
    assert.ok(Object.keys(env).length > 0, 'the start script\'s environment is read (MALLOC_TRIM_THRESHOLD_)');
    for (const [k, v] of Object.entries(env)) assert.ok(environ.includes(`${k}=${v}`), `camrelay runs with npm start's ${k}=${v}`);
    const starting = await app.waitLog((l) => l.msg === 'camrelay starting', 1000);
    assert.equal(starting.version, (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    const page = await request(app.base + '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<html/i, 'the web UI is served from the bundle');

    const chosen = await app.waitLog((l) => l.msg === 'webrtc backend', 1000);
    if (backend === 'werift') assert.equal(chosen.backend, 'werift', 'the werift chunk loads');
    const v = new Viewer();
    await v.connect(app.base, 'demo', 'sdp');
    await waitFor('50 H.264 packets incl. a keyframe with SPS/PPS', () => v.video.length >= 50 && v.sawKeyframeWithParams(), 10000);
    assert.equal(app.children().length, 1, 'one ffmpeg while the viewer watches');
    assert.equal(await v.hangUp(app.base), 200);
    await waitFor('ffmpeg gone after the viewer left', () => app.children().length === 0, 2000);
    await v.close();
  } finally {
    assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  }
}

test('the bundle plays the demo over WebRTC with the default backend and stops ffmpeg after', { timeout: 60000 }, () => playsDemo('auto'));

test('the bundle loads werift when it is the configured backend', { timeout: 60000 }, () => playsDemo('werift'));
