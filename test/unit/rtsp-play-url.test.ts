import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMediaQuery, parsePlayUrl, trackIdOf } from '../../src/rtsp/play-url.js';

const ALL = { video: ['H264', 'H265'], audio: ['OPUS', 'AAC', 'PCMA', 'PCMU'] };

test('stream names: decoded, slashes trimmed, query split off', () => {
  assert.deepEqual(parsePlayUrl('rtsp://h:8554/cam'), { name: 'cam', request: ALL, internal: false });
  assert.equal(parsePlayUrl('rtsp://user:pw@h:8554/cam/')?.name, 'cam');
  assert.equal(parsePlayUrl('rtsp://h/odd.name_with-chars%25%C3%A9?video')?.name, 'odd.name_with-chars%é');
  assert.equal(parsePlayUrl('rtsp://[::1]:8554/a.b')?.name, 'a.b');
  assert.equal(parsePlayUrl('/cam?audio')?.name, 'cam', 'a bare path');
  assert.equal(parsePlayUrl('rtsp://h:8554/'), undefined, 'no name');
  assert.equal(parsePlayUrl('rtsp://h/%E0%A4%A'), undefined, 'bad percent-encoding');
  assert.equal(parsePlayUrl('*'), undefined);
});

test("go2rtc's media query", () => {
  const table: [string, object][] = [
    ['', ALL],
    ['source=x&pkt_size=1000', ALL],
    ['video&audio', ALL],
    ['video', { video: ALL.video }],
    ['audio', { audio: ALL.audio }],
    ['video=h264', { video: ['H264'] }],
    ['video=hevc,h264&audio=aac', { video: ['H265', 'H264'], audio: ['AAC'] }],
    ['audio=opus&audio=pcma', { audio: ['OPUS', 'PCMA'] }],
    ['video=copy', { video: ALL.video }],
    ['audio=OPUS/48000/2', { audio: ['OPUS'] }],
    ['audio=mp3', { audio: [] }],
    ['video=opus', { video: [] }],
  ];
  for (const [q, want] of table) assert.deepEqual(parseMediaQuery(q), want, q);
  assert.deepEqual(parsePlayUrl('rtsp://127.0.0.1:8554/cam2?video&audio')?.request, ALL);
  assert.deepEqual(parsePlayUrl('rtsp://127.0.0.1:8554/cam2?audio')?.request, { audio: ALL.audio });
});

test('SETUP URLs name their track however the client joined them', () => {
  assert.equal(trackIdOf('rtsp://h/cam/trackID=1'), 1);
  assert.equal(trackIdOf('rtsp://h/cam?video&audio/trackID=0'), 0, "ffmpeg appends to the query");
  assert.equal(trackIdOf('rtsp://h/cam/trackID=2/'), 2);
  assert.equal(trackIdOf('rtsp://h/cam'), undefined);
  assert.equal(trackIdOf('rtsp://h/xtrackID=1'), undefined);
});
