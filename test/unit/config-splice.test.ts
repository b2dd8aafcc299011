// A write through the API changes only the entry it is about: every other line of config.yaml,
// comments and their alignment included, stays byte-identical (the yaml Document writer alone
// re-aligns trailing comments and moves some). A write that changes nothing is not made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigStore } from '../../src/config/save.js';

const SHIPPED = readFileSync(path.join(import.meta.dirname, '../../config.yaml'), 'utf8');
const DEMO = SHIPPED.split('\n').find((l) => l.startsWith('  demo: '))!;

function withFile(text: string, run: (file: string, store: ConfigStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-splice-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, text);
  return run(file, new ConfigStore(file)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('adding, replacing and deleting a stream and a preload in the shipped config.yaml touches only those lines', { timeout: 10000 }, async () => {
  await withFile(SHIPPED, async (file, store) => {
    await store.setStream('camera.porch', ['rtsp://u:p@10.0.0.2/s', 'ffmpeg:camera.porch#audio=opus#query=log_level=debug']);
    const added = `${DEMO}\n  camera.porch:\n    - rtsp://u:p@10.0.0.2/s\n    - ffmpeg:camera.porch#audio=opus#query=log_level=debug\n`;
    const one = SHIPPED.replace(`${DEMO}\n`, added);
    assert.equal(readFileSync(file, 'utf8'), one);

    await store.setStream('camera.porch', ['rtsp://u:p@10.0.0.3/s', 'ffmpeg:camera.porch#audio=opus#query=log_level=debug']);
    const two = one.replace('10.0.0.2', '10.0.0.3');
    assert.equal(readFileSync(file, 'utf8'), two);

    await store.setStream('demo', ['rtsp://10.0.0.9/x']);
    const three = two.replace(DEMO, '  demo: rtsp://10.0.0.9/x');
    assert.equal(readFileSync(file, 'utf8'), three);

    await store.setPreload('camera.porch', 'video&audio');
    const four = `${three}preload:\n  camera.porch: video&audio\n`;
    assert.equal(readFileSync(file, 'utf8'), four);

    await store.deleteStream('camera.porch');
    assert.equal(readFileSync(file, 'utf8'), SHIPPED.replace(DEMO, '  demo: rtsp://10.0.0.9/x'), 'the stream and its preload (its section too) go; other lines stay');
  });
});

test('a trailing comment on a replaced entry and the alignment of its neighbours stay', { timeout: 10000 }, async () => {
  const text = 'api:\n  listen: ":1984"          # aligned\n\nstreams:\n  a: rtsp://h/1      # the garage\n  b:\n    sources: [ "rtsp://h/2" ]   # flow\n    idle_timeout: 30s    # slow camera\n';
  await withFile(text, async (file, store) => {
    await store.setStream('a', ['rtsp://h/9']);
    assert.equal(readFileSync(file, 'utf8'), text.replace('rtsp://h/1', 'rtsp://h/9'));
    await store.setStream('b', ['rtsp://h/3', 'ffmpeg:b#audio=opus']);
    assert.equal(readFileSync(file, 'utf8'), text.replace('rtsp://h/1', 'rtsp://h/9').replace('[ "rtsp://h/2" ]', '[rtsp://h/3, ffmpeg:b#audio=opus]'));
  });
});

test('a PUT of what the file already says writes nothing, also when the file spells the password as ${VAR}', { timeout: 10000 }, async () => {
  process.env.CAMRELAY_TEST_SPLICE_PW = 'hunter2';
  const text = 'streams:\n  cam: [ "rtsp://u:${CAMRELAY_TEST_SPLICE_PW}@h/1", "ffmpeg:cam#audio=opus" ]\n';
  try {
    await withFile(text, async (file, store) => {
      const before = statSync(file).mtimeMs;
      const saved = await store.setStream('cam', ['rtsp://u:hunter2@h/1', 'ffmpeg:cam#audio=opus']);
      assert.deepEqual(saved.sources, ['rtsp://u:hunter2@h/1', 'ffmpeg:cam#audio=opus']);
      assert.equal(readFileSync(file, 'utf8'), text, 'the variable stays in the file');
      assert.equal(statSync(file).mtimeMs, before);
    });
  } finally {
    delete process.env.CAMRELAY_TEST_SPLICE_PW;
  }
});
