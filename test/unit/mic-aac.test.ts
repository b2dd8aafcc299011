// The microphone converter to an AAC backchannel (issue 18): a real ffmpeg per converter encodes
// the decoded microphone; what comes out are RFC 3640 AAC-hbr payloads, one access unit each, in
// the camera's AU header layout, timestamps +1024, all marked; decoded back by ffmpeg they are the
// 1 kHz tone. Gaps, refusals of layouts and configs it cannot make, a malformed or missing or stuck
// ffmpeg, and close(): the child is stopped and awaited, nothing left counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { g711Encode } from '../../src/codecs/g711.js';
import { setRootLogger } from '../../src/core/log.js';
import type { Codec } from '../../src/core/media.js';
import { liveObjects } from '../../src/core/objects.js';
import { MicConverter, micConversionError, UnsupportedTalkCodecError, type MicPacket, type TalkPacket } from '../../src/outputs/talk/mic-converter.js';
import { AdtsError, AdtsReader, auPayload } from '../../src/outputs/talk/adts.js';
import { packetizeAac } from '../../src/rtp/aac-packetizer.js';
import { opusTone } from '../helpers/ogg-opus.js';
import { assertTone } from '../helpers/tone.js';
import { waitFor } from '../helpers/wait.js';
import { payloadBytes } from '../../src/rtp/payload.js';

const logs: Record<string, unknown>[] = [];
setRootLogger(pino({ level: 'debug' }, { write: (l: string) => logs.push(JSON.parse(l) as Record<string, unknown>) }));

const OPUS: Codec = { name: 'OPUS', clockRate: 48000, channels: 2 };
const PCMA: Codec = { name: 'PCMA', clockRate: 8000, channels: 1 };
const HBR = 'streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3';
/** What an ONVIF camera with an AAC backchannel says: 16 kHz mono AAC-LC (config 1408). */
const AAC16: Codec = { name: 'AAC', clockRate: 16000, channels: 1, fmtp: `${HBR};config=1408` };

const tone1k = opusTone({ frequency: 1000, seconds: 2 }).packets.slice(0, 100);

function micPackets(packets: readonly Buffer[], seq0 = 100, ts0 = 5000, step = 960): MicPacket[] {
  return packets.map((payload, i) => ({ payload, sequenceNumber: (seq0 + i) & 0xffff, timestamp: (ts0 + i * step) >>> 0 }));
}

function collect(c: MicConverter): TalkPacket[] {
  const out: TalkPacket[] = [];
  c.on('packet', (p) => out.push(p));
  return out;
}

const count = (kind: string): number => liveObjects()[kind] ?? 0;
const steps = (out: readonly TalkPacket[]): number[] => out.slice(1).map((p, i) => (p.timestamp - out[i]!.timestamp) >>> 0);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The access unit of an AAC-hbr payload with one AU header of `sizeLength` + `indexLength` bits; checks the header. */
function unitOf(p: Buffer, sizeLength = 13, indexLength = 3): Buffer {
  const bits = sizeLength + indexLength;
  const bytes = Math.ceil(bits / 8);
  assert.equal(p.readUInt16BE(0), bits, 'AU-headers-length');
  let v = 0;
  for (let i = 0; i < bytes; i++) v = v * 256 + p[2 + i]!;
  v = Math.floor(v / 2 ** (bytes * 8 - bits));
  const size = Math.floor(v / 2 ** indexLength);
  assert.equal(v % 2 ** indexLength, 0, 'AU-index 0');
  assert.equal(size, p.length - 2 - bytes, 'AU-size is the rest of the payload');
  return p.subarray(2 + bytes);
}

/** ADTS around raw AAC-LC units, decoded by ffmpeg to s16 mono at `rate`. */
function ffmpegDecodeAac(units: readonly Buffer[], rate: number): Int16Array {
  const index = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350].indexOf(rate);
  const adts = Buffer.concat(
    units.flatMap((u) => {
      const len = u.length + 7;
      const h = Buffer.from([0xff, 0xf1, (1 << 6) | (index << 2), (1 << 6) | (len >> 11), (len >> 3) & 0xff, ((len & 7) << 5) | 0x1f, 0xfc]);
      return [h, u];
    }),
  );
  const raw = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'aac', '-i', 'pipe:0', '-f', 's16le', '-ac', '1', '-ar', String(rate), 'pipe:1'], { input: adts });
  return new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
}

test('Opus 1 kHz → AAC 16 kHz: one ffmpeg child, AAC-hbr payloads (packetizeAac\'s bytes), timestamps +1024, every packet marked, the tone decoded back; close() stops the child and waits for it', { timeout: 30_000 }, async () => {
  const before = { conv: count('MicConverter'), child: count('ChildProcess'), enc: count('AacEncoder') };
  const c = new MicConverter({ input: OPUS, target: AAC16, initialTimestamp: 2 ** 32 - 3000 });
  assert.equal(count('ChildProcess'), before.child + 1, 'one ffmpeg');
  assert.equal(count('AacEncoder'), before.enc + 1);
  const pid = c.encoderPid!;
  assert.ok(pid && alive(pid));
  const out = collect(c);
  await c.ready;
  const t0 = Date.now();
  for (const p of micPackets(tone1k)) c.push(p);
  // 2 s at 16 kHz is 31.25 units; ffmpeg keeps the last one or two until more audio comes.
  await waitFor('units out', () => out.length >= 29, 10_000, 5);
  const latency = Date.now() - t0;
  assert.ok(out.every((p) => p.marker), 'RFC 3640: every packet ends its access unit');
  assert.equal(out[0]!.timestamp, 2 ** 32 - 3000);
  assert.deepEqual(steps(out), new Array(out.length - 1).fill(1024), 'timestamps +1024 across the 32-bit wrap');
  const units = out.map((p) => unitOf(p.payload));
  for (const [i, u] of units.entries()) assert.deepEqual(out[i]!.payload, payloadBytes(packetizeAac(u)[0]!));
  const pcm = ffmpegDecodeAac(units, 16000);
  const report = assertTone(pcm, { frequency: 1000, sampleRate: 16000, minRatio: 1000, minRms: 2000, skip: 2048 });
  const s = c.stats;
  assert.equal(s.received, 100);
  assert.equal(s.emitted, out.length);
  assert.equal(s.behind, 0);
  const bytes = units.reduce((n, u) => n + u.length, 0);
  console.log(`# mic→AAC: ${out.length} units (${((bytes * 8) / (out.length * 0.064) / 1000).toFixed(1)} kbit/s), ${latency} ms to the 29th after 2 s of input pushed at once; ${JSON.stringify(report)}`);

  const closed = Date.now();
  c.close();
  assert.equal(count('MicConverter'), before.conv, 'unusable at once');
  await c.done;
  console.log(`# mic→AAC: ffmpeg gone ${Date.now() - closed} ms after close()`);
  assert.equal(alive(pid), false, 'the ffmpeg child has exited (and was reaped) once done settled');
  assert.equal(count('ChildProcess'), before.child);
  assert.equal(count('AacEncoder'), before.enc);
  c.push(micPackets(tone1k)[0]!);
  assert.equal(c.stats.received, 100, 'ignored once closed');
});

test('PCMA 8 kHz → AAC 8 kHz in another AU header layout (sizelength=16, indexlength=0, no config): the fmtp\'s layout is honoured', { timeout: 30_000 }, async () => {
  const target: Codec = { name: 'AAC', clockRate: 8000, channels: 1, fmtp: 'streamtype=5;mode=AAC-hbr;sizelength=16;indexlength=0' };
  const c = new MicConverter({ input: PCMA, target });
  const out = collect(c);
  await c.ready;
  const pcm = Int16Array.from({ length: 16000 }, (_, i) => Math.round(12000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)));
  const law = g711Encode('PCMA', pcm);
  const packets = Array.from({ length: 100 }, (_, i) => Buffer.from(law.subarray(i * 160, (i + 1) * 160)));
  for (const p of micPackets(packets, 7, 0, 160)) c.push(p);
  await waitFor('units out', () => out.length >= 13, 10_000, 5);
  assert.deepEqual(steps(out), new Array(out.length - 1).fill(1024));
  const units = out.map((p) => unitOf(p.payload, 16, 0));
  assertTone(ffmpegDecodeAac(units, 8000), { frequency: 1000, sampleRate: 8000, minRatio: 1000, skip: 1024 });
  c.close();
  await c.done;
});

test('a gap under a second is silence (timestamps stay +1024); a longer one moves the timestamps on by the gap', { timeout: 30_000 }, async () => {
  const mic = micPackets(tone1k);
  const c = new MicConverter({ input: OPUS, target: AAC16 });
  const out = collect(c);
  await c.ready;
  // 200 ms lost after packet 20, then 3 s of nothing after packet 60.
  const jump = 150;
  const sent = [...mic.slice(0, 20), ...mic.slice(30, 60), ...mic.slice(60).map((p) => ({ ...p, sequenceNumber: p.sequenceNumber + 10, timestamp: p.timestamp + jump * 960 }))];
  for (const p of sent) c.push(p);
  await waitFor('units out', () => out.length >= 28, 10_000, 5);
  const s = steps(out);
  const odd = s.flatMap((d, i) => (d === 1024 ? [] : [[i, d] as const]));
  assert.equal(odd.length, 1, `one step other than 1024: ${JSON.stringify(odd)}`);
  const gap = jump * 320; // 3 s at 16 kHz
  const extra = odd[0]![1] - 1024;
  assert.ok(extra > gap - 1024 && extra <= gap, `the jump ${extra} is the 3 s gap less what completed its unit`);
  assert.equal(c.stats.gaps, 2);
  c.close();
  await c.done;
});

test('AAC backchannels camrelay cannot make are refused naming why, before anything is counted or started', { timeout: 5000 }, () => {
  const before = { conv: count('MicConverter'), child: count('ChildProcess') };
  const cases: [string, Codec][] = [
    ['AAC-lbr: 6-bit AU-size', { name: 'AAC', clockRate: 16000, channels: 1, fmtp: 'streamtype=5;mode=AAC-lbr;sizelength=6;indexlength=2;indexdeltalength=2;config=1408' }],
    ['HE-AAC config', { name: 'AAC', clockRate: 16000, channels: 1, fmtp: `${HBR};config=2b090800` }],
    ['config rate other than the clock', { name: 'AAC', clockRate: 16000, channels: 1, fmtp: `${HBR};config=1588` }],
    ['960-sample frames', { name: 'AAC', clockRate: 16000, channels: 1, fmtp: `${HBR};config=140c` }],
    ['6 channels', { name: 'AAC', clockRate: 16000, channels: 6, fmtp: HBR }],
    ['no mode', { name: 'AAC', clockRate: 16000, channels: 1, fmtp: 'config=1408' }],
    ['CTS deltas', { name: 'AAC', clockRate: 16000, channels: 1, fmtp: `${HBR};ctsdeltalength=16` }],
    ['96 kHz', { name: 'AAC', clockRate: 96000, channels: 1, fmtp: HBR }],
  ];
  for (const [name, target] of cases) {
    const e = micConversionError(OPUS, target);
    assert.ok(e instanceof UnsupportedTalkCodecError && e.codec === 'AAC', `${name}: ${String(e)}`);
    assert.match(e.message, /backchannel codec AAC\/\d+.* not supported: /, name);
    assert.throws(() => new MicConverter({ input: OPUS, target }), UnsupportedTalkCodecError, name);
  }
  assert.equal(micConversionError(OPUS, AAC16), undefined);
  assert.equal(micConversionError(PCMA, AAC16), undefined);
  assert.equal(micConversionError({ name: 'OPUS', clockRate: 48000, channels: 2 }, { name: 'AAC', clockRate: 44100, channels: 2, fmtp: `${HBR};config=1210` }), undefined, 'stereo 44.1 kHz: resampled, upmixed');
  assert.equal(micConversionError(AAC16, PCMA)?.codec, 'AAC', 'not as a microphone');
  assert.equal(count('MicConverter'), before.conv);
  assert.equal(count('ChildProcess'), before.child);
});

test('auPayload: the AU header in any layout; 13/3 is packetizeAac\'s; a unit too large for its AU-size throws', () => {
  const au = Buffer.alloc(300, 7);
  assert.deepEqual(auPayload(au, { sizeLength: 13, indexLength: 3 }), payloadBytes(packetizeAac(au)[0]!));
  assert.deepEqual(auPayload(au, { sizeLength: 16, indexLength: 0 }).subarray(0, 4), Buffer.from([0x00, 0x10, 0x01, 0x2c]));
  // 10 + 2 bits = 12: one and a half bytes, padded: 300 = 0b0100101100 → 0100 1011 0000 (index 00, 4 bits padding).
  assert.deepEqual(auPayload(au, { sizeLength: 10, indexLength: 2 }).subarray(0, 4), Buffer.from([0x00, 0x0c, 0x4b, 0x00]));
  assert.throws(() => auPayload(Buffer.alloc(1024), { sizeLength: 10, indexLength: 2 }), RangeError);
});

test('AdtsReader: frames split across chunks and several in one; a bad sync word, another rate or raw blocks throw', () => {
  const frame = (len: number, opts: { rate?: number; blocks?: number; sync?: number } = {}) => {
    const total = len + 7;
    const h = Buffer.from([opts.sync ?? 0xff, 0xf1, (1 << 6) | ((opts.rate ?? 8) << 2), (1 << 6) | (total >> 11), (total >> 3) & 0xff, ((total & 7) << 5) | 0x1f, 0xfc | ((opts.blocks ?? 1) - 1)]);
    return Buffer.concat([h, Buffer.alloc(len, len & 0xff)]);
  };
  const r = new AdtsReader({ sampleRate: 16000, channels: 1 });
  const stream = Buffer.concat([frame(10), frame(200), frame(3)]);
  const got: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 5) got.push(...r.push(stream.subarray(i, i + 5)));
  assert.deepEqual(got.map((u) => u.length), [10, 200, 3]);
  assert.equal(r.pending, 0);
  assert.deepEqual(r.push(Buffer.concat([frame(1), frame(2), frame(3).subarray(0, 4)])).map((u) => u.length), [1, 2]);
  assert.equal(r.pending, 4);
  assert.throws(() => new AdtsReader({ sampleRate: 16000, channels: 1 }).push(frame(5, { sync: 0x00 })), AdtsError);
  assert.throws(() => new AdtsReader({ sampleRate: 16000, channels: 1 }).push(frame(5, { rate: 11 })), /8000 Hz, not 16000/);
  assert.throws(() => new AdtsReader({ sampleRate: 16000, channels: 1 }).push(frame(5, { blocks: 2 })), /raw data blocks/);
});

test('ffmpeg missing, writing garbage, or not reading: ready rejects / the converter closes with the reason (logged) / PCM is dropped and counted; no child left', { timeout: 30_000 }, async () => {
  const before = { conv: count('MicConverter'), child: count('ChildProcess'), enc: count('AacEncoder') };
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-mic-aac-'));
  const grace = { quit: 200, term: 200 };
  try {
    const missing = new MicConverter({ input: PCMA, target: AAC16, ffmpeg: { bin: path.join(dir, 'no-ffmpeg'), grace } });
    await assert.rejects(missing.ready, /could not start ffmpeg-talk-aac/);
    assert.ok(missing.closed);

    const garbage = path.join(dir, 'garbage.sh');
    writeFileSync(garbage, '#!/bin/sh\nprintf "this is not ADTS at all"\nexec cat >/dev/null\n');
    chmodSync(garbage, 0o755);
    const bad = new MicConverter({ input: PCMA, target: AAC16, ffmpeg: { bin: garbage, grace } });
    const reason = new Promise<Error | undefined>((resolve) => bad.once('close', resolve));
    await bad.ready;
    assert.ok((await reason) instanceof AdtsError);
    assert.ok(logs.some((l) => l.msg === 'the talk AAC encoder wrote a malformed frame: stopping it'));
    await bad.done;

    const stuck = path.join(dir, 'stuck.sh');
    writeFileSync(stuck, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(stuck, 0o755);
    const slow = new MicConverter({ input: PCMA, target: { ...AAC16, clockRate: 8000, fmtp: HBR }, ffmpeg: { bin: stuck, grace } });
    await slow.ready;
    const pid = slow.encoderPid!;
    // 20 s of audio at once: 320 KB of PCM for a pipe of 64 KiB and a backlog of 1 s (16 KB).
    const silence = Buffer.alloc(160, 0xd5);
    for (let i = 0; i < 1000; i++) slow.push({ payload: silence, sequenceNumber: i, timestamp: i * 160 });
    assert.ok((slow.stats.behind ?? 0) > 500, `dropped: ${slow.stats.behind}`);
    assert.ok(logs.some((l) => l.msg === 'the talk AAC encoder falls behind: dropping microphone audio'));
    const t0 = Date.now();
    slow.close();
    await slow.done;
    assert.equal(alive(pid), false);
    console.log(`# mic→AAC: an ffmpeg that does not read is gone ${Date.now() - t0} ms after close() (q, then SIGTERM after ${grace.quit} ms)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(count('MicConverter'), before.conv);
  assert.equal(count('ChildProcess'), before.child);
  assert.equal(count('AacEncoder'), before.enc);
});
