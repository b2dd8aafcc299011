import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskCredentials } from '../../src/core/log.js';

test('credentials in URLs are masked, including passwords with @ or /', () => {
  const table: [string, string][] = [
    ['rtsp://admin:secret@10.0.0.2/main', 'rtsp://***:***@10.0.0.2/main'],
    ['rtsp://admin:p@ss@10.0.0.2/main', 'rtsp://***:***@10.0.0.2/main'],
    ['rtsp://admin:a/b@cam:554/x', 'rtsp://***:***@cam:554/x'],
    ['rtsp://user@cam', 'rtsp://***:***@cam'],
    ['ffmpeg:rtsp://u:p@cam/x#video=h264', 'ffmpeg:rtsp://***:***@cam/x#video=h264'],
    ['two: rtsp://a:b@h1/x and http://c:d@h2/y', 'two: rtsp://***:***@h1/x and http://***:***@h2/y'],
    ['rtsp://cam/stream', 'rtsp://cam/stream'],
    ['no url here', 'no url here'],
  ];
  for (const [input, want] of table) assert.equal(maskCredentials(input), want, input);
});
