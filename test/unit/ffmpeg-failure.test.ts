import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unreachableLine } from '../../src/sources/ffmpeg-failure.js';

test("ffmpeg's lines for a camera that refused or is not there (ffmpeg 5.1, -loglevel error)", () => {
  for (const line of [
    '[tcp @ 0x5636] Connection to tcp://127.0.0.1:9?timeout=0 failed: Connection refused',
    'http://127.0.0.1:9/x.mjpg: Connection refused',
    'rtmp://127.0.0.1:9/live: Connection refused',
    'http://cam/x: Server returned 401 Unauthorized (authorization failed)',
    'http://cam/x: Server returned 403 Forbidden (access denied)',
    'http://cam/x: Server returned 404 Not Found',
    '[rtsp @ 0x55] method DESCRIBE failed: 401 Unauthorized',
    '[rtsp @ 0x55] method DESCRIBE failed: 404 Not Found',
    '[tcp @ 0x55] Failed to resolve hostname nosuch.invalid: Name or service not known',
    '[tcp @ 0x55] Failed to resolve hostname cam.lan: Temporary failure in name resolution',
    'rtsp://10.0.0.9/x: Connection reset by peer',
  ]) {
    assert.equal(unreachableLine(['Input #0 …', line]), line, line);
  }
});

test('other failures are not classified: they wait for the retries (busy, slow, bad data)', () => {
  for (const line of [
    'http://cam/x: Server returned 503 Service Unavailable',
    '[rtsp @ 0x55] method DESCRIBE failed: 503 Service Unavailable',
    'rtsp://cam/x: Connection timed out',
    'pipe:0: Invalid data found when processing input',
    'Server returned 4XX Client Error, but not one of 40{0,1,3,4}',
  ]) {
    assert.equal(unreachableLine([line]), undefined, line);
  }
});
