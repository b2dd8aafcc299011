import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CODEC_LIST } from '../../src/codecs/table.js';
import { codecJson } from '../../src/api/go2rtc-json.js';

test("go2rtc's JSON names each codec as ffprobe does, from its table entry", { timeout: 5000 }, () => {
  const names = Object.fromEntries(CODEC_LIST.map((f) => [f.name, codecJson(f.kind, { name: f.name, clockRate: f.clockRate ?? 0 }).codec_name]));
  assert.deepEqual(names, { H264: 'h264', H265: 'hevc', OPUS: 'opus', AAC: 'aac', PCMA: 'pcm_alaw', PCMU: 'pcm_mulaw' });
  assert.deepEqual(codecJson('audio', { name: 'PCMA', clockRate: 16000, channels: 2 }), { codec_name: 'pcm_alaw', codec_type: 'audio', sample_rate: 16000, channels: 2 });
});

test('the WebRTC session and go2rtc JSON name no codec themselves', { timeout: 5000 }, () => {
  const names = CODEC_LIST.flatMap((f) => [f.name, f.encoding, ...f.aliases, f.ffprobeName]);
  for (const file of ['src/outputs/webrtc/session.ts', 'src/api/go2rtc-json.ts']) {
    const text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    for (const n of names) assert.ok(!text.includes(`'${n}'`), `${file} spells '${n}': read it from the codec table`);
  }
});
