// Streams managed through the API as Home Assistant does it: PUT saves to config.yaml (comments
// kept) and survives a restart; sources we cannot run, or must not run from the network, get 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { waitFor } from '../helpers/wait.js';
import { request } from '../helpers/http.js';
import { WebSocket } from 'ws';

const q = (params: [string, string][]) => params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');

test('PUT, PATCH and DELETE /api/streams as go2rtc; PUT survives a restart with comments kept', { timeout: 60000 }, async () => {
  let app = await CamrelayProcess.start(`# my camrelay\n${testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x240#video=h264' })}`);
  try {
    const schemes = await app.json<string[]>('/api/schemes');
    assert.ok(schemes.body.includes('rtsp') && schemes.body.includes('ffmpeg'));

    const put = await app.json(`/api/streams?${q([['name', 'front.door_1'], ['src', 'rtsp://user:pass@127.0.0.1:9/live'], ['src', 'ffmpeg:front.door_1#audio=opus']])}`, { method: 'PUT' });
    assert.equal(put.status, 200);
    const streams = (await app.json<Record<string, { producers: { url: string }[] }>>('/api/streams')).body;
    assert.deepEqual(streams['front.door_1']!.producers.map((p) => p.url), ['rtsp://***:***@127.0.0.1:9/live', 'ffmpeg:front.door_1#audio=opus']);
    const text = readFileSync(app.configFile, 'utf8');
    assert.ok(text.startsWith('# my camrelay'), 'the comment is kept');
    assert.match(text, /front\.door_1:/);

    const patch = await app.json(`/api/streams?${q([['name', 'temp'], ['src', 'rtsp://127.0.0.1:9/x']])}`, { method: 'PATCH' });
    assert.equal(patch.status, 200);
    assert.ok((await app.json<Record<string, unknown>>('/api/streams')).body.temp, 'PATCH adds the stream in memory');
    assert.doesNotMatch(readFileSync(app.configFile, 'utf8'), /temp:/, 'PATCH does not save');

    app = await app.restart();
    const after = (await app.json<Record<string, unknown>>('/api/streams')).body;
    assert.ok(after['front.door_1'], 'the PUT stream survives a restart');
    assert.equal(after.temp, undefined, 'the PATCH stream does not');

    const del = await app.json(`/api/streams?${q([['src', 'front.door_1']])}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await app.json<Record<string, unknown>>('/api/streams')).body['front.door_1'], undefined);
    assert.doesNotMatch(readFileSync(app.configFile, 'utf8'), /front\.door_1/);
    assert.equal((await app.json(`/api/streams?src=nope`, { method: 'DELETE' })).status, 404);
  } finally {
    await app.stop();
  }
});

test('sources we cannot run, or that would let the network reach local files, get 400 with the reason', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({}));
  try {
    const before = readFileSync(app.configFile, 'utf8');
    const cases: [string, RegExp][] = [
      ['ffmpeg:/etc/passwd#video=h264', /local file inputs are accepted only from config\.yaml/],
      ['ffmpeg:device?video=/dev/video0#video=h264', /local device inputs/],
      ['ffmpeg:rtsp://127.0.0.1/x#video=h264#raw=-f image2 /tmp/x.jpg', /#raw= is accepted only from config\.yaml/],
      ['ffmpeg:rtsp://127.0.0.1/x#video=h264#input=-i /etc/passwd', /input/],
      ['ffmpeg:virtual?video=movie=/etc/passwd#video=h264', /./],
      ['gopher://old/thing', /unsupported source scheme "gopher:"/],
      ['', /non-empty/],
    ];
    for (const [src, why] of cases) {
      const r = await app.json<{ error: string }>(`/api/streams?${q([['name', 'x'], ['src', src]])}`, { method: 'PUT' });
      assert.equal(r.status, 400, src);
      assert.match(r.body.error, why, src);
    }
    const badName = await app.json<{ error: string }>(`/api/streams?${q([['name', 'a/b'], ['src', 'rtsp://127.0.0.1/x']])}`, { method: 'PUT' });
    assert.equal(badName.status, 400);
    assert.equal(readFileSync(app.configFile, 'utf8'), before, 'nothing was written');
    assert.deepEqual(Object.keys((await app.json<Record<string, unknown>>('/api/streams')).body), []);
  } finally {
    await app.stop();
  }
});

/** python-go2rtc-client's decoding of GET /api/preload: a dict of dicts, each with a string `query`. */
function decodePreloadList(body: unknown): Record<string, { query: string }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('ValueError: not a dict');
  const out: Record<string, { query: string }> = {};
  for (const [name, v] of Object.entries(body)) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('ValueError: Argument for Preload.__mashumaro_from_dict__ method should be a dict instance');
    const q = (v as { query?: unknown }).query;
    if (typeof q !== 'string') throw new Error(`MissingField/InvalidFieldValue: query of ${name}`);
    out[name] = { query: q };
  }
  return out;
}

test('preload keeps a source running with no viewer, survives a restart, and DELETE stops it', { timeout: 60000 }, async () => {
  let app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264' }));
  try {
    assert.equal(app.children().length, 0);
    assert.equal((await app.json('/api/preload?src=demo&video&audio', { method: 'PUT' })).status, 200);
    // As python-go2rtc-client decodes it (BasicDecoder(dict[str, Preload]), Preload.query: str):
    // Home Assistant lists the preloads of every camera at startup.
    assert.deepEqual(decodePreloadList((await app.json('/api/preload')).body), { demo: { query: 'video&audio' } });
    await waitFor('preloaded source running', async () => app.children().length === 1 && (await app.json<{ state: string }>('/api/streams?src=demo')).body.state === 'live', 5000);
    const listed = (await app.json<Record<string, { consumer: { format_name: string; medias: string[]; senders?: { codec: { codec_name: string } }[] } }>>('/api/preload')).body;
    assert.equal(listed.demo!.consumer.format_name, 'preload');
    assert.deepEqual(listed.demo!.consumer.medias, ['video, sendonly, ANY', 'audio, sendonly, ANY']);
    await waitFor('the preload consumer lists the H.264 it is given', async () => (await app.json<typeof listed>('/api/preload')).body.demo?.consumer.senders?.some((x) => x.codec.codec_name === 'h264'), 5000);
    assert.match(readFileSync(app.configFile, 'utf8'), /preload:\n\s+demo: video&audio/);

    app = await app.restart();
    await waitFor('preload restored after restart', () => app.children().length === 1, 5000);
    assert.equal((await app.json('/api/preload?src=demo', { method: 'DELETE' })).status, 200);
    await waitFor('source stopped', () => app.children().length === 0, 2000);
    assert.deepEqual((await app.json('/api/preload')).body, {});
    assert.doesNotMatch(readFileSync(app.configFile, 'utf8'), /demo: video&audio/);
    assert.equal((await app.json('/api/preload?src=nope', { method: 'PUT' })).status, 404);
  } finally {
    await app.stop();
  }
});

test('with api.username/password set, every call needs Basic auth', { timeout: 30000 }, async () => {
  const yaml = testConfig({}).replace('api: { listen: "127.0.0.1:0" }', 'api: { listen: "127.0.0.1:0", username: admin, password: "s3cret" }');
  const app = await CamrelayProcess.start(yaml);
  try {
    const basic = (u: string, p: string) => ({ authorization: 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64') });
    for (const path of ['/api', '/api/streams', '/', '/api/frame.jpeg?src=x', '/api/debug/objects']) {
      const r = await request(app.base + path);
      assert.equal(r.status, 401, path);
      assert.equal(r.headers['www-authenticate'], 'Basic realm="camrelay"');
    }
    assert.equal((await app.json('/api', { headers: basic('admin', 'wrong') })).status, 401);
    assert.equal((await app.json('/api', { headers: basic('admin', 's3cret') })).status, 200);
    // The signalling WebSocket is behind the same credentials.
    const upgrade = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${app.port}/api/ws?src=x`, { headers });
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.once('open', () => {
          resolve(101);
          ws.close();
        });
        ws.once('error', (e) => reject(e));
      });
    assert.equal(await upgrade({}), 401);
    assert.equal(await upgrade(basic('admin', 's3cret')), 101);
  } finally {
    await app.stop();
  }
});
