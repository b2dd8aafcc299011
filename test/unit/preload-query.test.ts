// go2rtc's preload query normalisation (internal/streams/api.go): only video, audio and
// microphone stay; nothing left means video&audio. camrelay writes one canonical spelling, and a
// query read back and put again stays the same string.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalisePreloadQuery } from '../../src/outputs/preload.js';

test('preload queries keep only video, audio and microphone, in one stable spelling', { timeout: 5000 }, () => {
  const table: [string, string][] = [
    ['', 'video&audio'],
    ['src=cam', 'video&audio'],
    ['src=cam&video&audio', 'video&audio'],
    ['audio&video', 'video&audio'],
    ['audio=&video=', 'video&audio'],
    ['video', 'video'],
    ['audio=opus', 'audio=opus'],
    ['video=h264&audio=opus', 'video=h264&audio=opus'],
    ['audio=opus&video=h264', 'video=h264&audio=opus'],
    ['video=h264,h265&audio=pcma', 'video=h264,h265&audio=pcma'],
    ['video=h264%2Ch265', 'video=h264,h265'],
    ['microphone&video&audio', 'video&audio&microphone'],
    ['video_codec_filter=h264&audio_codec_filter=opus', 'video&audio'],
    ['foo=bar&baz', 'video&audio'],
    ['src=cam&foo&video=copy', 'video=copy'],
    ['video=a%26b', 'video=a%26b'],
  ];
  for (const [input, want] of table) {
    assert.equal(normalisePreloadQuery(input), want, `?${input}`);
    assert.equal(normalisePreloadQuery(want), want, `${want} is stable`);
  }
});
