import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigStore } from '../../src/config/save.js';
import { loadConfig } from '../../src/config/load.js';

const ORIGINAL = `# camrelay test config
api:
  listen: ":1984"   # the API

streams:
  # the first camera
  cam1: rtsp://a/1
  porch:
    sources: [ "rtsp://b/2" ]
    idle_timeout: 30s   # slow to wake
`;

function withFile(run: (file: string, dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-save-'));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, ORIGINAL);
    try {
      await run(file, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('adding and replacing streams keeps comments, order and per-stream settings', withFile(async (file) => {
  const store = new ConfigStore(file);
  const added = await store.setStream('garage', ['rtsp://c/3', 'ffmpeg:garage#audio=opus']);
  assert.deepEqual(added.sources, ['rtsp://c/3', 'ffmpeg:garage#audio=opus']);
  await store.setStream('cam1', ['rtsp://a/9']);
  await store.setStream('porch', ['rtsp://b/5']);
  const text = readFileSync(file, 'utf8');
  for (const comment of ['# camrelay test config', '# the API', '# the first camera', '# slow to wake']) assert.ok(text.includes(comment), comment);
  const c = loadConfig(file);
  assert.deepEqual(Object.keys(c.streams), ['cam1', 'porch', 'garage']);
  assert.deepEqual(c.streams.cam1!.sources, ['rtsp://a/9']);
  assert.deepEqual(c.streams.porch!.sources, ['rtsp://b/5']);
  assert.equal(c.streams.porch!.settings.idleTimeout, 30000, 'the mapping form keeps its overrides');
  await store.deleteStream('cam1');
  assert.deepEqual(Object.keys(loadConfig(file).streams), ['porch', 'garage']);
}));

test('concurrent saves are applied one after another, none lost', withFile(async (file) => {
  const store = new ConfigStore(file);
  await Promise.all(Array.from({ length: 10 }, (_, i) => store.setStream(`s${i}`, [`rtsp://h/${i}`])));
  assert.equal(Object.keys(loadConfig(file).streams).length, 12);
}));

test('a crash between writing and renaming leaves the old file intact and no temp file', withFile(async (file, dir) => {
  const store = new ConfigStore(file, {
    beforeRename: () => {
      throw new Error('simulated crash');
    },
  });
  await assert.rejects(store.setStream('garage', ['rtsp://c/3']), /simulated crash/);
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
  assert.deepEqual(readdirSync(dir), ['config.yaml']);
}));

test('a change that would make the config invalid is refused and nothing is written', withFile(async (file) => {
  const store = new ConfigStore(file);
  await assert.rejects(store.setStream('bad name', ['rtsp://c/3']), /must not contain/);
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
}));
