// What comes in through the HTTP API is untrusted (issue 12): it must not read the server's
// environment, reach local files or devices through a stream reference, pollute maps keyed by
// names, carry control characters, or show credentials back. Each test runs a real camrelay.
import { test } from 'node:test';
import { SNAPSHOT_DECODER_KEEP_MS } from '../../src/outputs/snapshot-pool.js';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { scrape } from '../helpers/metrics-scrape.js';
import { waitFor } from '../helpers/wait.js';
import { Signalling } from '../helpers/signalling.js';
import { CHROME_OFFER } from '../helpers/chrome-offer.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const q = (params: [string, string][]) => params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
const put = (app: CamrelayProcess, name: string, ...src: string[]) =>
  app.json<{ error?: string }>(`/api/streams?${q([['name', name], ...src.map((s): [string, string] => ['src', s])])}`, { method: 'PUT' });
const del = (app: CamrelayProcess, name: string) => app.json<{ error?: string }>(`/api/streams?${q([['src', name]])}`, { method: 'DELETE' });

async function getBytes(url: string): Promise<{ status: number; body: Buffer }> {
  const chunks: Buffer[] = [];
  const status = await new Promise<number>((resolve, reject) => {
    http
      .get(url, { agent: false, timeout: 20000 }, (res) => {
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
  return { status, body: Buffer.concat(chunks) };
}

/** The mean colour of a JPEG, as [r, g, b], decoded by ffmpeg. */
function meanRgb(jpeg: Buffer): [number, number, number] {
  const px = execFileSync('ffmpeg', ['-v', 'error', '-i', 'pipe:0', '-vf', 'scale=1:1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { input: jpeg });
  return [px[0]!, px[1]!, px[2]!];
}
const isRed = ([r, g, b]: [number, number, number]) => r > 180 && g < 80 && b < 80;

test('"${…}" in a source from the API is refused, set or unset, and never substituted', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({}), { env: { CAMRELAY_TEST_SECRET: 'hunter2-from-env' } });
  try {
    const before = readFileSync(app.configFile, 'utf8');
    const set = await put(app, 'x', 'rtsp://127.0.0.1:9/${CAMRELAY_TEST_SECRET}');
    const unset = await put(app, 'x', 'rtsp://127.0.0.1:9/${CAMRELAY_TEST_SURELY_UNSET_42}');
    assert.equal(set.status, 400, JSON.stringify(set.body));
    assert.equal(unset.status, 400, JSON.stringify(unset.body));
    assert.deepEqual(set.body, unset.body, 'the answer does not tell whether the variable is set');
    assert.match(set.body.error ?? '', /"\$\{" is not allowed in a source from the API: environment variables are substituted only in config\.yaml/);
    // In the user part too (masked in answers, but sent to whatever host the URL names).
    assert.deepEqual((await put(app, 'x', 'rtsp://${CAMRELAY_TEST_SECRET}@127.0.0.1:9/')).body, set.body);
    assert.equal((await app.json(`/api/streams?${q([['name', 'y'], ['src', 'rtsp://127.0.0.1:9/${HOME}']])}`, { method: 'PATCH' })).status, 400);
    const listed = JSON.stringify((await app.json('/api/streams')).body);
    assert.doesNotMatch(listed, /hunter2/);
    assert.equal(listed, '{}');
    assert.equal(readFileSync(app.configFile, 'utf8'), before, 'config.yaml unchanged');
  } finally {
    await app.stop();
  }
});

/**
 * A camrelay whose working directory holds a file named like a stream: `rec.ts`, a red clip.
 * The helper runs camrelay from the repository; a preloaded module moves it into the clip's
 * directory, which links node_modules so that tsx still loads.
 */
async function camrelayBesideAFile(): Promise<{ app: CamrelayProcess; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-cwd-'));
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=red:s=160x120:r=10:d=2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-f', 'mpegts', path.join(dir, 'rec.ts')]);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const chdir = path.join(dir, 'chdir.mjs');
  writeFileSync(chdir, `process.chdir(${JSON.stringify(dir)});\n`);
  // A reader that cannot start fails within 3 s instead of the default 10 s.
  const app = await CamrelayProcess.start(testConfig({ blue: 'ffmpeg:virtual?video=color&color=blue&size=160x120&clock=0#video=h264' }, 'stream_defaults: { start_timeout: 3s }'), {
    nodeFlags: ['--import', pathToFileURL(chdir).href],
  });
  return { app, dir };
}

/** ffmpeg command lines camrelay logged that read a file or a device. */
const localInputs = (app: CamrelayProcess): string[] =>
  app.logs
    .filter((l) => l.msg === 'spawning ffmpeg' && Array.isArray(l.args))
    .map((l) => (l.args as string[]).join(' '))
    .filter((cmd) => /-i (file:|\/)|-f v4l2/.test(cmd));

test('a stream reference from the API cannot become a file: the reader keeps its stream (DELETE 409), no ffmpeg opens the file', { timeout: 90000 }, async () => {
  const started = await camrelayBesideAFile();
  let app = started.app;
  const dir = started.dir;
  try {
    // The stream named like the file, and a second stream reading it.
    assert.equal((await put(app, 'rec.ts', 'ffmpeg:virtual?video=color&color=blue&size=160x120&clock=0#video=h264')).status, 200);
    assert.equal((await put(app, 'reader', 'ffmpeg:rec.ts#video=h264')).status, 200);
    const saved = readFileSync(app.configFile, 'utf8');

    const d = await del(app, 'rec.ts');
    assert.equal(d.status, 409, JSON.stringify(d.body));
    assert.match(d.body.error ?? '', /stream "rec\.ts" is read by "reader"/);
    assert.equal(readFileSync(app.configFile, 'utf8'), saved, 'config.yaml keeps both streams');
    assert.ok((await app.json<Record<string, unknown>>('/api/streams')).body['rec.ts']);

    const snap = await getBytes(`${app.base}/api/frame.jpeg?src=reader`);
    if (snap.status === 200) assert.ok(!isRed(meanRgb(snap.body)), 'the snapshot is not the file\'s picture');
    assert.deepEqual(localInputs(app), [], 'no ffmpeg was given a file or device');

    // At the next start both come from config.yaml: the reference still holds the stream.
    app = await app.restart();
    assert.equal((await del(app, 'rec.ts')).status, 409);
    const snap2 = await getBytes(`${app.base}/api/frame.jpeg?src=reader`);
    if (snap2.status === 200) assert.ok(!isRed(meanRgb(snap2.body)), 'after a restart, still not the file\'s picture');
    assert.deepEqual(localInputs(app), []);

    // Deleting the reader first, then the stream, works.
    assert.equal((await del(app, 'reader')).status, 200);
    assert.equal((await del(app, 'rec.ts')).status, 200);
    // Without the stream, ffmpeg:rec.ts from the API is a local file: refused.
    const again = await put(app, 'reader', 'ffmpeg:rec.ts#video=h264');
    assert.equal(again.status, 400);
    assert.match(again.body.error ?? '', /local file inputs are accepted only from config\.yaml/);
    assert.doesNotMatch(readFileSync(app.configFile, 'utf8'), /rec\.ts/);
    assert.deepEqual(localInputs(app), []);
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('names that read as devices, inputs or paths are refused through the API; HA names are not', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({}));
  try {
    const before = readFileSync(app.configFile, 'utf8');
    const src = 'ffmpeg:virtual?video=testsrc2&size=160x120&clock=0#video=h264';
    for (const name of ['device?video=0', 'virtual?video=testsrc', 'tts?text=hi', '.hidden', '..', '~root', 'a\\b', 'C:\\x', '/etc/passwd', '${HOME}']) {
      const r = await put(app, name, src);
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
      assert.ok(r.body.error, name);
    }
    // The device bypass: the first PUT is refused, so the second has nothing to read.
    const second = await put(app, 'second', 'ffmpeg:device?video=0#video=h264');
    assert.equal(second.status, 400);
    assert.match(second.body.error ?? '', /local device inputs are accepted only from config\.yaml/);
    assert.equal(readFileSync(app.configFile, 'utf8'), before);
    assert.deepEqual((await app.json('/api/streams')).body, {});
    assert.deepEqual(localInputs(app), []);
  } finally {
    await app.stop();
  }
});

test("Home Assistant's streams.add still works from the API: [rtsp://cam, ffmpeg:camera.x#audio=opus#query=log_level=debug]", { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({}));
  try {
    // The exact pair home-assistant/core's go2rtc integration sends for camera.front_door.
    const r = await put(app, 'camera.front_door', 'rtsp://127.0.0.1:9/stream', 'ffmpeg:camera.front_door#audio=opus#query=log_level=debug');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const s = (await app.json<Record<string, { producers: { url: string }[] }>>('/api/streams')).body;
    assert.deepEqual(s['camera.front_door']?.producers.map((p) => p.url), ['rtsp://127.0.0.1:9/stream', 'ffmpeg:camera.front_door#audio=opus#query=log_level=debug']);
    // Deleting a stream that reads only itself is not blocked.
    assert.equal((await del(app, 'camera.front_door')).status, 200);
  } finally {
    await app.stop();
  }
});

test('a stream named __proto__ is refused cleanly, and maps keyed by names find nothing on Object.prototype', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=160x120&clock=0#video=h264' }));
  try {
    const before = readFileSync(app.configFile, 'utf8');
    for (const name of ['__proto__', 'constructor', 'prototype']) {
      const r = await put(app, name, 'rtsp://127.0.0.1:9/x');
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error ?? '', /is reserved/);
      assert.equal((await app.json(`/api/streams?${q([['name', name], ['src', 'rtsp://127.0.0.1:9/x']])}`, { method: 'PATCH' })).status, 400);
    }
    assert.equal(readFileSync(app.configFile, 'utf8'), before, 'nothing half-written to config.yaml');
    assert.deepEqual(Object.keys((await app.json<Record<string, unknown>>('/api/streams')).body), ['demo']);
    // "constructor" is `in` every plain object: there is no preload of that name to delete.
    const d = await app.json<{ error?: string }>('/api/preload?src=constructor', { method: 'DELETE' });
    assert.equal(d.status, 404, JSON.stringify(d.body));
    assert.equal(readFileSync(app.configFile, 'utf8'), before);
    assert.deepEqual((await app.json('/api/preload')).body, {});
  } finally {
    await app.stop();
  }
});

test('control characters in a source or a name from the API are refused; a NUL from config.yaml fails its source and leaves no child counted', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ nul: 'ffmpeg:rtsp://127.0.0.1:9/a\0b#video=h264' }));
  try {
    const before = readFileSync(app.configFile, 'utf8');
    for (const src of ['rtsp://127.0.0.1:9/a\0b', 'ffmpeg:rtsp://127.0.0.1:9/a\0b#video=h264', 'rtsp://127.0.0.1:9/a\r\nX-Injected: 1', 'rtsp://127.0.0.1:9/a\tb', 'rtsp://127.0.0.1:9/\x7f']) {
      const r = await put(app, 'x', src);
      assert.equal(r.status, 400, `${JSON.stringify(src)}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error ?? '', /must not contain control characters/);
    }
    const badName = await put(app, 'a\0b', 'rtsp://127.0.0.1:9/x');
    assert.equal(badName.status, 400);
    assert.equal(readFileSync(app.configFile, 'utf8'), before);

    // From config.yaml the source is trusted, but spawn refuses the NUL: a clear error, no drift.
    const snap = await getBytes(`${app.base}/api/frame.jpeg?src=nul`);
    assert.notEqual(snap.status, 200);
    assert.match(snap.body.toString(), /null bytes/);
    assert.equal((await app.objects()).ChildProcess ?? 0, 0, 'the child process count is back to 0');
  } finally {
    await app.stop();
  }
});

test('credentials in a query string show neither in GET /api/streams nor in any log line', { timeout: 30000 }, async () => {
  const secrets = ['s3cretQ1', 't0kenQ2', 'k3yQ3', 'Cfg4pw'];
  const app = await CamrelayProcess.start(testConfig({ cfg: `rtsp://127.0.0.1:9/live?user=admin&Password=${secrets[3]}` }));
  try {
    const src = `rtsp://127.0.0.1:9/stream?user=admin&password=${secrets[0]}&token=${secrets[1]}`;
    assert.equal((await put(app, 'cam', src, `ffmpeg:rtsp://127.0.0.1:9/x?api_key=${secrets[2]}#video=h264`)).status, 200);
    // Start both so the RTSP client, ffmpeg and the stream log their URLs and errors.
    for (const name of ['cam', 'cfg']) {
      const snap = await getBytes(`${app.base}/api/frame.jpeg?src=${name}`);
      assert.notEqual(snap.status, 200);
    }
    const listed = (await request(`${app.base}/api/streams`)).text;
    const one = (await request(`${app.base}/api/streams?src=cam`)).text;
    assert.ok(JSON.parse(listed).cam, 'still valid JSON');
    assert.match(listed, /password=\*\*\*&token=\*\*\*/);
    for (const s of secrets) {
      assert.ok(!listed.includes(s) && !one.includes(s), `GET /api/streams shows ${s}`);
      const leaking = app.logs.filter((l) => JSON.stringify(l).includes(s));
      assert.deepEqual(leaking, [], `log lines show ${s}`);
    }
  } finally {
    await app.stop();
  }
});

test('the metric series of a stream deleted through the API leave GET /metrics', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ kept: 'ffmpeg:virtual?video=testsrc2&size=160x120&clock=0#video=h264' }));
  try {
    const labelled = async (stream: string): Promise<string[]> => {
      const m = await scrape(app);
      return [...m.values()].flatMap((f) => f.metrics.filter((x) => x.labels?.stream === stream).map((x) => `${f.name}${JSON.stringify(x.labels)}`));
    };
    assert.equal((await put(app, 'gone', 'ffmpeg:virtual?video=testsrc2&size=160x120&clock=0#video=h264')).status, 200);
    for (const name of ['gone', 'kept']) assert.equal((await getBytes(`${app.base}/api/frame.jpeg?src=${name}`)).status, 200);
    // The snapshots' decoders are kept for the next request, then stop after their quiet period.
    await waitFor('no ffmpeg left', () => app.children().length === 0, SNAPSHOT_DECODER_KEEP_MS + 5000);
    const before = await labelled('gone');
    assert.ok(before.some((s) => s.startsWith('camrelay_source_starts_total')), before.join('\n'));
    assert.ok(before.some((s) => s.startsWith('camrelay_stream_bytes_in_total')), before.join('\n'));

    assert.equal((await del(app, 'gone')).status, 200);
    assert.deepEqual(await labelled('gone'), [], 'no series of the deleted stream');
    assert.ok((await labelled('kept')).length > 0, 'the other stream keeps its series');
  } finally {
    await app.stop();
  }
});

test('an offer without ICE credentials or fingerprint answers 400 (HTTP) or an error naming it (WebSocket), not 500', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=160x120&clock=0#video=h264' }));
  try {
    const without = (re: RegExp) => CHROME_OFFER.split('\r\n').filter((l) => !re.test(l)).join('\r\n');
    const cases: [string, RegExp][] = [
      [without(/^a=ice-ufrag:/), /offer has no a=ice-ufrag/],
      [without(/^a=ice-pwd:/), /offer has no a=ice-pwd/],
      [without(/^a=fingerprint:/), /offer has no a=fingerprint/],
      [without(/^(m=|a=)/), /offer has no m-line/],
    ];
    for (const [sdp, why] of cases) {
      const json = await app.json<{ error?: string }>('/api/webrtc?src=demo', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'offer', sdp }),
      });
      assert.equal(json.status, 400, JSON.stringify(json.body));
      assert.match(json.body.error ?? '', why);
      const raw = await request(`${app.base}/api/webrtc?src=demo`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: sdp });
      assert.equal(raw.status, 400, raw.text);

      const ws = await new Signalling(app.port, 'demo').open();
      try {
        ws.send({ type: 'webrtc/offer', value: sdp });
        const err = await ws.next((m) => m.type === 'error');
        assert.match(String(err.value), new RegExp(`^webrtc/offer: ${why.source}`));
        assert.doesNotMatch(String(err.value), /internal error/);
      } finally {
        ws.ws.close();
      }
    }
    // Nothing was left open by the refused offers.
    await waitFor('no session and no source left', async () => {
      const o = await app.objects();
      return (o.WebRtcSession ?? 0) === 0 && app.children().length === 0;
    }, 10000);
  } finally {
    await app.stop();
  }
});
