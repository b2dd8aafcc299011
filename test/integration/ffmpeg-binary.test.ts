import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFfmpeg } from '../../src/process/ffmpeg-binary.js';

const DEBIAN = '/usr/bin/ffmpeg';

test('a configured binary is used as given', { timeout: 20000 }, async () => {
  const f = await findFfmpeg(DEBIAN);
  assert.deepEqual({ path: f.path, origin: f.origin }, { path: DEBIAN, origin: 'config' });
  assert.match(f.version, /^\d+\.\d+/);
});

test('a configured binary that does not run is an error, not a fallback', { timeout: 20000 }, async () => {
  await assert.rejects(findFfmpeg('/nonexistent/ffmpeg'), { message: 'ffmpeg.bin "/nonexistent/ffmpeg" does not run: not found' });
  await assert.rejects(findFfmpeg('/bin/true'), /ffmpeg\.bin "\/bin\/true" does not run: unexpected -version output/);
});

test('ffmpeg on PATH', { timeout: 20000 }, async () => {
  const f = await findFfmpeg(undefined, { path: `/nonexistent:/usr/bin` });
  assert.deepEqual({ path: f.path, origin: f.origin }, { path: DEBIAN, origin: 'PATH' });
  assert.match(f.version, /^\d+\.\d+/);
});

test('the npm package when PATH has no ffmpeg', { timeout: 20000 }, async () => {
  const f = await findFfmpeg(undefined, { path: tmpdir() });
  assert.equal(f.origin, 'npm package');
  assert.ok(existsSync(f.path), f.path);
  assert.match(f.path, /@ffmpeg-installer/);
  assert.ok(f.version.length > 0);
});

test('nothing found: the error says what was tried', { timeout: 20000 }, async () => {
  // Resolving from a directory without node_modules is what a missing optional dependency looks like.
  await assert.rejects(findFfmpeg(undefined, { path: '/nonexistent', npmFrom: join(tmpdir(), 'x.js') }), {
    message:
      'no usable ffmpeg; tried "ffmpeg" on PATH (/nonexistent): not found; @ffmpeg-installer/ffmpeg: not installed. ' +
      'Install ffmpeg or set ffmpeg.bin in the config.',
  });
});
