import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskCredentials, maskJsonText } from '../../src/core/log.js';

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

test('credentials in a query string are masked, whatever the case of the parameter name', () => {
  const table: [string, string][] = [
    ['rtsp://cam/stream?user=admin&password=secret', 'rtsp://cam/stream?user=***&password=***'],
    ['rtsp://cam/s?channel=1&PWD=x&Pass=y#video=h264', 'rtsp://cam/s?channel=1&PWD=***&Pass=***#video=h264'],
    ['http://h/a?token=t&auth=a&key=k&api_key=z&secret=s&Username=u', 'http://h/a?token=***&auth=***&key=***&api_key=***&secret=***&Username=***'],
    ['ffmpeg:rtsp://u:p@cam/x?password=p#video=h264', 'ffmpeg:rtsp://***:***@cam/x?password=***#video=h264'],
    // Not credentials: other parameters, ffmpeg fragments, device and virtual inputs.
    ['rtsp://cam/s?channel=1&subtype=0', 'rtsp://cam/s?channel=1&subtype=0'],
    ['ffmpeg:cam#audio=opus#query=log_level=debug', 'ffmpeg:cam#audio=opus#query=log_level=debug'],
    ['ffmpeg:virtual?video=testsrc2&size=720#video=h264', 'ffmpeg:virtual?video=testsrc2&size=720#video=h264'],
    ['rtsp://cam/s?monkey=1&passage=2', 'rtsp://cam/s?monkey=1&passage=2'],
  ];
  for (const [input, want] of table) assert.equal(maskCredentials(input), want, input);
});

test('maskJsonText masks inside JSON and keeps it valid JSON', () => {
  const line = JSON.stringify({ msg: 'x', url: 'rtsp://admin:pw@cam/a?password=pw2', other: 'mail@example.com', n: 'rtsp://cam/b' }) + '\n';
  const masked = maskJsonText(line);
  assert.deepEqual(JSON.parse(masked), { msg: 'x', url: 'rtsp://***:***@cam/a?password=***', other: 'mail@example.com', n: 'rtsp://cam/b' });
  // Two strings of one line are never joined by the mask.
  const two = JSON.stringify({ a: 'rtsp://cam/x', b: 'user@host' }) + '\n';
  assert.equal(maskJsonText(two), two);
});
