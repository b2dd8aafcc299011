// The microphone converter (src/outputs/talk): Opus made by ffmpeg's libopus in, G.711 packets
// out, checked by their sizes, timestamps and markers and by the tone they decode to (with our
// G.711 decoder and with ffmpeg's); loss, reordering, duplicates, garbage, the decoder's queue,
// pass-through, G.711 transcoding and resampling, refusals, and close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { g711Decode, g711Encode, type G711Codec } from '../../src/codecs/g711.js';
import { setRootLogger } from '../../src/core/log.js';
import type { Codec } from '../../src/core/media.js';
import { liveObjects } from '../../src/core/objects.js';
import { MicConverter, micConversionError, UnsupportedTalkCodecError, type MicPacket, type TalkPacket } from '../../src/outputs/talk/mic-converter.js';
import { checkOpusPacket } from '../../src/outputs/talk/opus-packet.js';
import { Resampler } from '../../src/outputs/talk/resampler.js';
import { opusTone } from '../helpers/ogg-opus.js';
import { assertTone, goertzelPower, rms } from '../helpers/tone.js';

setRootLogger(pino({ level: 'silent' }));

const OPUS: Codec = { name: 'OPUS', clockRate: 48000, channels: 2 };
const PCMA: Codec = { name: 'PCMA', clockRate: 8000, channels: 1 };
const PCMU: Codec = { name: 'PCMU', clockRate: 8000, channels: 1 };

// The encoder's pre-skip makes a 101st packet: 100 is 2 s.
const tone1k = opusTone({ frequency: 1000, seconds: 2 }).packets.slice(0, 100);
// Start near both wraps: sequence numbers past 65535, timestamps past 2^32.
const SEQ0 = 65_500;
const TS0 = 2 ** 32 - 10 * 960;

/** The tone's packets as the browser would send them: 20 ms apart in the 48 kHz clock. */
function micPackets(packets: readonly Buffer[], seq0 = SEQ0, ts0 = TS0): MicPacket[] {
  return packets.map((payload, i) => ({ payload, sequenceNumber: (seq0 + i) & 0xffff, timestamp: (ts0 + i * 960) >>> 0 }));
}

function collect(c: MicConverter): TalkPacket[] {
  const out: TalkPacket[] = [];
  c.on('packet', (p) => out.push(p));
  return out;
}

function count(kind: string): number {
  return liveObjects()[kind] ?? 0;
}

/** Timestamp steps between consecutive packets (32-bit wrap undone). */
function steps(out: readonly TalkPacket[]): number[] {
  return out.slice(1).map((p, i) => (p.timestamp - out[i]!.timestamp) >>> 0);
}

/** ffmpeg's decoding of G.711 bytes to s16. */
function ffmpegDecode(codec: G711Codec, bytes: Buffer): Int16Array {
  const raw = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', codec === 'PCMA' ? 'alaw' : 'mulaw', '-ar', '8000', '-ac', '1', '-i', 'pipe:0', '-f', 's16le', 'pipe:1'], { input: bytes });
  return new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
}

async function convert(packets: readonly MicPacket[], target: Codec, input: Codec = OPUS): Promise<{ out: TalkPacket[]; c: MicConverter }> {
  const c = new MicConverter({ input, target });
  const out = collect(c);
  await c.ready;
  for (const p of packets) c.push(p);
  c.close();
  return { out, c };
}

test('ffmpeg\'s Opus tone is 100 valid 20 ms packets', { timeout: 5000 }, () => {
  assert.equal(tone1k.length, 100);
  for (const p of tone1k) assert.deepEqual(checkOpusPacket(p), { ok: true, samples: 960, frames: 1 });
});

for (const codec of ['PCMA', 'PCMU'] as const) {
  test(`Opus 1 kHz → ${codec}: 160-byte packets, timestamps +160 across the wrap, a 1 kHz tone decoded by us and by ffmpeg`, { timeout: 30_000 }, async () => {
    const c = new MicConverter({ input: OPUS, target: codec === 'PCMA' ? PCMA : PCMU, initialTimestamp: 2 ** 32 - 800 });
    assert.equal(count('MicConverter'), 1);
    const out = collect(c);
    const mic = micPackets(tone1k);
    // The first packets arrive while the decoder loads: they wait, in order.
    for (const p of mic.slice(0, 10)) c.push(p);
    assert.equal(out.length, 0);
    await c.ready;
    for (const p of mic.slice(10)) c.push(p);
    assert.equal(out.length, 100, '2 s of 20 ms packets');
    assert.ok(out.every((p) => p.payload.length === 160));
    assert.equal(out[0]!.timestamp, 2 ** 32 - 800);
    assert.deepEqual(steps(out), new Array(99).fill(160));
    assert.deepEqual(out.map((p) => p.marker), [true, ...new Array(99).fill(false)], 'only the first packet starts a talkspurt');
    assert.deepEqual(c.stats, { received: 100, emitted: 100, duplicate: 0, late: 0, malformed: 0, overflow: 0, gaps: 0, resyncs: 0 });

    const bytes = Buffer.concat(out.map((p) => p.payload));
    const ours = g711Decode(codec, bytes);
    const theirs = ffmpegDecode(codec, bytes);
    assert.deepEqual([...ours], [...theirs], 'our decoding is ffmpeg\'s');
    const report = assertTone(ours, { frequency: 1000, sampleRate: 8000, minRatio: 1000, minRms: 2000, skip: 320 });
    assert.ok(report.ratio > 1000, `ratio ${report.ratio}`);
    c.close();
    assert.equal(count('MicConverter'), 0);
  });
}

test('a gap in the input moves the timestamp on by its duration and marks the packet after it', { timeout: 10_000 }, async () => {
  const mic = micPackets(tone1k);
  // 100 ms lost: packets 30 to 34.
  const { out, c } = await convert([...mic.slice(0, 30), ...mic.slice(35)], PCMA);
  assert.equal(out.length, 95);
  const s = steps(out);
  assert.equal(s[29], 160 + 5 * 160, 'the jump is the 100 ms lost');
  assert.deepEqual([...s.slice(0, 29), ...s.slice(30)], new Array(93).fill(160));
  assert.deepEqual(out.flatMap((p, i) => (p.marker ? [i] : [])), [0, 30]);
  assert.equal(c.stats.gaps, 1);
});

test('reordered, late and duplicate packets are dropped and counted; the hole they leave is silence', { timeout: 10_000 }, async () => {
  const mic = micPackets(tone1k);
  // 10 and 11 swapped, 19 three times, 30 after 39, 5 again after 44 (in the last 64 taken: a duplicate).
  const order = [...mic.slice(0, 10), mic[11]!, mic[10]!, ...mic.slice(12, 20), mic[19]!, mic[19]!, ...mic.slice(20, 30), ...mic.slice(31, 40), mic[30]!, ...mic.slice(40, 45), mic[5]!, ...mic.slice(45)];
  const { out, c } = await convert(order, PCMA);
  assert.equal(c.stats.late, 2, 'packet 10 after 11, packet 30 after 39');
  assert.equal(c.stats.duplicate, 3);
  // Packets 10 and 30 are holes in the timeline: 20 ms skipped each, the output keeps the input's clock.
  assert.equal(out.length, 98);
  const s = steps(out);
  assert.deepEqual(
    s.flatMap((d, i) => (d === 160 ? [] : [[i, d]])),
    [
      [9, 320],
      [28, 320],
    ],
  );
  assert.deepEqual(out.flatMap((p, i) => (p.marker ? [i] : [])), [0, 10, 29]);
  assert.equal(c.stats.gaps, 2);
});

test('garbage in place of Opus packets is counted and skipped, never thrown, and never reaches libopus', { timeout: 10_000 }, async () => {
  const mic = micPackets(tone1k);
  const garbage = [
    Buffer.alloc(0),
    Buffer.from([0x03, 0x00]), // code 3, zero frames
    Buffer.from([0x01, 0xaa, 0xbb, 0xcc]), // code 1, two equal frames in 3 bytes
    Buffer.from([0x02, 0xfc]), // code 2, two-byte length truncated
    Buffer.alloc(5000, 0x78), // longer than any packet the decoder takes
  ];
  garbage.forEach((payload, i) => (mic[40 + i] = { ...mic[40 + i]!, payload }));
  const errors: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  let out: TalkPacket[];
  let c: MicConverter;
  try {
    ({ out, c } = await convert(mic, PCMA));
  } finally {
    console.error = consoleError;
  }
  assert.deepEqual(errors, [], 'libopus would have printed a line for each packet it refused');
  assert.equal(c.stats.malformed, 5);
  assert.equal(out.length, 95);
  assert.equal(steps(out)[39], 6 * 160, 'the garbage is a 100 ms hole');
  assertTone(g711Decode('PCMA', Buffer.concat(out.map((p) => p.payload))), { frequency: 1000, sampleRate: 8000, minRatio: 1000, skip: 320 });
});

test('packets that come while the decoder loads wait in a bounded queue, the oldest dropped', { timeout: 10_000 }, async () => {
  const c = new MicConverter({ input: OPUS, target: PCMU, maxQueued: 25 });
  const out = collect(c);
  const mic = micPackets(tone1k);
  for (const p of mic.slice(0, 40)) c.push(p);
  await c.ready;
  assert.equal(c.stats.overflow, 15);
  assert.equal(out.length, 25, 'packets 15 to 39');
  assert.equal(out[0]!.timestamp, 0);
  assert.deepEqual(steps(out), new Array(24).fill(160));
  c.close();
});

test('a sequence-number jump starts a new run once a second packet confirms it', { timeout: 10_000 }, async () => {
  const mic = micPackets(tone1k.slice(0, 20));
  // The browser restarted its RTP stream: new sequence numbers and timestamps.
  const again = micPackets(tone1k.slice(20, 40), 30_000, 123_456);
  const { out, c } = await convert([...mic, ...again], PCMA);
  assert.equal(c.stats.resyncs, 1);
  assert.equal(c.stats.late, 1, 'the first packet of the jump waits for confirmation: dropped');
  assert.equal(out.length, 39);
  assert.deepEqual(steps(out), new Array(38).fill(160), 'the output clock carries on');
  assert.deepEqual(out.flatMap((p, i) => (p.marker ? [i] : [])), [0, 20]);
});

test('Opus to an Opus backchannel passes through: the same payloads, timestamps and gaps in the 48 kHz clock', { timeout: 10_000 }, async () => {
  const mic = micPackets(tone1k);
  const c = new MicConverter({ input: OPUS, target: { name: 'OPUS', clockRate: 48000, channels: 2 }, initialTimestamp: 1000 });
  const out = collect(c);
  await c.ready;
  for (const p of [...mic.slice(0, 50), ...mic.slice(52)]) c.push(p);
  assert.equal(out.length, 98);
  assert.ok(out.every((p, i) => p.payload === mic[i < 50 ? i : i + 2]!.payload));
  assert.equal(out[0]!.timestamp, 1000);
  const s = steps(out);
  assert.ok(s.every((d, i) => d === (i === 49 ? 3 * 960 : 960)));
  assert.deepEqual(out.flatMap((p, i) => (p.marker ? [i] : [])), [0, 50]);
  c.close();
});

/** `seconds` of a sine at `rate`, amplitude 0.5 of full scale, as 16-bit samples. */
function sine(frequency: number, rate: number, seconds: number): Int16Array {
  return Int16Array.from({ length: rate * seconds }, (_, i) => Math.round(16384 * Math.sin((2 * Math.PI * frequency * i) / rate)));
}

/** G.711 bytes in RTP packets of `samples` each. */
function g711Packets(bytes: Uint8Array, samples: number): MicPacket[] {
  const out: MicPacket[] = [];
  for (let i = 0; i * samples < bytes.length; i++) {
    out.push({ payload: Buffer.from(bytes.subarray(i * samples, (i + 1) * samples)), sequenceNumber: i, timestamp: i * samples });
  }
  return out;
}

test('PCMA to PCMA passes the bytes through, in 20 ms packets whatever the microphone\'s', { timeout: 10_000 }, async () => {
  const bytes = g711Encode('PCMA', sine(1000, 8000, 1));
  const { out } = await convert(g711Packets(bytes, 240), PCMA, PCMA);
  assert.equal(out.length, 50);
  assert.ok(out.every((p) => p.payload.length === 160));
  assert.deepEqual(Buffer.concat(out.map((p) => p.payload)), Buffer.from(bytes));
  assert.deepEqual(steps(out), new Array(49).fill(160));
});

test('PCMA to PCMU is transcoded sample by sample; a flush() sends the last partial packet padded with silence', { timeout: 10_000 }, async () => {
  const pcm = sine(1000, 8000, 1);
  const c = new MicConverter({ input: PCMA, target: PCMU });
  const out = collect(c);
  await c.ready;
  for (const p of g711Packets(g711Encode('PCMA', pcm.subarray(0, 7900)), 100)) c.push(p);
  assert.equal(out.length, 49);
  c.flush();
  assert.equal(out.length, 50);
  assert.deepEqual([...out[49]!.payload.subarray(60)], new Array(100).fill(0xff), 'µ-law silence');
  const decoded = g711Decode('PCMU', Buffer.concat(out.map((p) => p.payload)));
  for (let i = 0; i < 7900; i += 50) assert.ok(Math.abs(decoded[i]! - pcm[i]!) <= Math.abs(pcm[i]!) / 8 + 32, `sample ${i}: ${decoded[i]} vs ${pcm[i]}`);
  assertTone(decoded.subarray(0, 7900), { frequency: 1000, sampleRate: 8000, minRatio: 1000 });
  c.close();
});

test('G.711 at 8 kHz to a 16 kHz backchannel is resampled: 320-sample packets, the tone kept', { timeout: 10_000 }, async () => {
  const bytes = g711Encode('PCMU', sine(1000, 8000, 1));
  const { out } = await convert(g711Packets(bytes, 160), { name: 'PCMA', clockRate: 16000 }, PCMU);
  assert.ok(out.length >= 49 && out.length <= 50, `${out.length} packets`);
  assert.ok(out.every((p) => p.payload.length === 320));
  assert.deepEqual(steps(out), new Array(out.length - 1).fill(320));
  const decoded = g711Decode('PCMA', Buffer.concat(out.map((p) => p.payload)));
  assertTone(decoded, { frequency: 1000, sampleRate: 16000, others: [440, 2000, 3000, 7000], minRatio: 1000, skip: 640 });
  // No image of the tone above the old Nyquist (8 - 1 = 7 kHz).
  assert.ok(goertzelPower(decoded, 16000, 7000, 640, decoded.length - 640) < goertzelPower(decoded, 16000, 1000, 640, decoded.length - 640) / 1e4);
});

test('the resampler keeps a tone in the passband at unity gain and removes what is above the new Nyquist', { timeout: 10_000 }, () => {
  const toFloat = (pcm: Int16Array) => Float32Array.from(pcm, (v) => v / 32768);
  const run = (input: Float32Array, from: number, to: number, chunk: number): Float32Array => {
    const r = new Resampler(from, to);
    const parts: number[] = [];
    for (let i = 0; i < input.length; i += chunk) parts.push(...r.process(input.subarray(i, i + chunk)));
    return Float32Array.from(parts);
  };
  const pass = run(toFloat(sine(1000, 48000, 1)), 48000, 8000, 333);
  assert.ok(Math.abs(pass.length - 8000) <= 1, `${pass.length} samples`);
  const level = rms(pass, 400, 7600) / rms(toFloat(sine(1000, 48000, 1)));
  assert.ok(Math.abs(level - 1) < 0.01, `gain ${level}`);
  assertTone(pass, { frequency: 1000, sampleRate: 8000, minRatio: 1e4, skip: 400 });
  // 5 kHz at 48 kHz would fold to 3 kHz at 8 kHz.
  const stop = run(toFloat(sine(5000, 48000, 1)), 48000, 8000, 960);
  assert.ok(rms(stop, 400, 7600) < 0.5 * 1e-3, `alias rms ${rms(stop, 400, 7600)}`);
  // A ratio with many phases (44.1 → 48 kHz) still keeps the tone.
  const odd = run(toFloat(sine(1000, 44100, 1)), 44100, 48000, 441);
  assert.ok(Math.abs(odd.length - 48000) <= 1);
  assertTone(odd, { frequency: 1000, sampleRate: 48000, minRatio: 1e4, skip: 1000 });
  assert.throws(() => new Resampler(48000, 47999), /phases/);
});

test('Opus decoded at 8 kHz does not alias: a 5 kHz tone leaves near silence', { timeout: 30_000 }, async () => {
  const high = opusTone({ frequency: 5000, seconds: 1, bitrate: '64k' }).packets;
  const { out } = await convert(micPackets(high), PCMA);
  const level = rms(g711Decode('PCMA', Buffer.concat(out.map((p) => p.payload))), 320);
  const { out: ref } = await convert(micPackets(tone1k.slice(0, 50)), PCMA);
  const refLevel = rms(g711Decode('PCMA', Buffer.concat(ref.map((p) => p.payload))), 320);
  assert.ok(level < refLevel / 100, `5 kHz: rms ${level.toFixed(1)}, 1 kHz: ${refLevel.toFixed(1)}`);
});

test('codecs it cannot reach are refused with an error naming the codec, before anything is counted', { timeout: 5000 }, () => {
  const before = count('MicConverter');
  const aac: Codec = { name: 'AAC', clockRate: 16000, channels: 1 };
  const g722 = { name: 'G722', clockRate: 8000, channels: 1 } as unknown as Codec;
  assert.throws(
    () => new MicConverter({ input: OPUS, target: g722 }),
    (e: unknown) => e instanceof UnsupportedTalkCodecError && e.codec === 'G722' && /backchannel codec G722 not supported yet \(camrelay converts to PCMA, PCMU, OPUS or AAC\)/.test(e.message),
  );
  // AAC is made (test/unit/mic-aac.test.ts), but not without the fmtp that says how.
  assert.match(micConversionError(OPUS, aac)?.message ?? '', /backchannel codec AAC\/16000 not supported: fmtp mode=\(none\)/);
  assert.equal(micConversionError(OPUS, PCMA), undefined);
  assert.equal(micConversionError(PCMU, { name: 'OPUS', clockRate: 48000, channels: 2 })?.codec, 'OPUS', 'no Opus encoder');
  assert.equal(micConversionError(aac, PCMA)?.codec, 'AAC');
  assert.equal(micConversionError({ name: 'H264', clockRate: 90000 }, PCMA)?.codec, 'H264');
  assert.throws(() => new MicConverter({ input: OPUS, target: PCMA, packetMs: 0.3 }), RangeError);
  assert.equal(count('MicConverter'), before);
});

test('close() releases the decoder, before or after it loaded; the count goes back to 0 and later pushes are ignored', { timeout: 10_000 }, async () => {
  const before = count('MicConverter');
  const early = new MicConverter({ input: OPUS, target: PCMA });
  const earlyClosed: unknown[] = [];
  early.on('close', (r) => earlyClosed.push(r));
  early.push(micPackets(tone1k)[0]!);
  early.close();
  early.close();
  assert.equal(earlyClosed.length, 1);
  await assert.rejects(early.ready, /closed before its Opus decoder loaded/);

  const c = new MicConverter({ input: OPUS, target: PCMA });
  const out = collect(c);
  await c.ready;
  assert.equal(count('MicConverter'), before + 1);
  const mic = micPackets(tone1k);
  for (const p of mic.slice(0, 10)) c.push(p);
  c.close();
  assert.equal(count('MicConverter'), before);
  for (const p of mic.slice(10)) c.push(p);
  c.flush();
  assert.equal(out.length, 10);
  assert.equal(c.stats.received, 10);
  await c.done;
});

test('a listener that closes the converter stops it at once', { timeout: 10_000 }, async () => {
  const c = new MicConverter({ input: PCMU, target: PCMA });
  const out: TalkPacket[] = [];
  c.on('packet', (p) => {
    out.push(p);
    c.close();
  });
  // One 60 ms packet would make three.
  c.push({ payload: Buffer.from(g711Encode('PCMU', sine(1000, 8000, 1).subarray(0, 480))), sequenceNumber: 1, timestamp: 0 });
  assert.equal(out.length, 1);
  assert.ok(c.closed);
});
