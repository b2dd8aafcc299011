// The long-lived snapshot decoders, in process: a real Stream fed keyframes made by ffmpeg (H.264
// with B-frames, H.264 without, H.265), the real decoder ffmpeg, JPEGs checked against a one-shot
// decode of the same keyframe; reuse within a GOP, the quiet period, the bound and the closes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { Stream, type StreamSettings } from '../../src/core/stream.js';
import { liveObjects } from '../../src/core/objects.js';
import type { Frame, Track } from '../../src/core/media.js';
import { SnapshotDecoder, parameterSetsOf } from '../../src/outputs/snapshot-decoder.js';
import { SnapshotPool, SnapshotsBusy } from '../../src/outputs/snapshot-pool.js';
import { ScriptedSource, TestViewer, H264 } from '../helpers/fake-parts.js';
import { splitAnnexB } from '../helpers/media-clips.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

const FFMPEG = '/usr/bin/ffmpeg';
const grace = { quit: 500, term: 500 };
const H265: Track = { kind: 'video', codec: { name: 'H265', clockRate: 90000 } };
const settings: StreamSettings = { idleTimeout: 0, startTimeout: 3000, backoff: { base: 40, max: 320, stableAfter: 10_000 } };

/** The keyframes (NAL units, parameter sets in front) of a clip encoded with B-frames or without. */
async function keyframes(codec: 'h264' | 'hevc', bframes: number, openGop = false, size = '640x360'): Promise<Buffer[][]> {
  const enc = codec === 'h264'
    ? ['-c:v', 'libx264', '-preset', 'veryfast', '-bf', String(bframes), '-g', '5', '-x264-params', 'aud=1:threads=1']
    : ['-c:v', 'libx265', '-preset', 'ultrafast', '-g', '5', '-x265-params', `log-level=error:aud=1:open-gop=${openGop ? 1 : 0}:bframes=${bframes}:frame-threads=1:pools=none`];
  const data = await new Promise<Buffer>((resolve, reject) => {
    const p = spawn(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-frames:v', '15', ...enc, '-pix_fmt', 'yuv420p', '-f', codec, '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg exited ${code}`))));
  });
  const type = (n: Buffer) => (codec === 'h264' ? n[0]! & 0x1f : (n[0]! >> 1) & 0x3f);
  const aud = codec === 'h264' ? 9 : 35;
  const irap = (t: number) => (codec === 'h264' ? t === 5 : t >= 16 && t <= 21);
  const units: Buffer[][] = [];
  for (const nal of splitAnnexB(data)) {
    if (type(nal) === aud) units.push([]);
    else units.at(-1)?.push(nal);
  }
  const keys = units.filter((u) => u.some((n) => irap(type(n))));
  assert.ok(keys.length >= 3, `${keys.length} keyframes`);
  return keys;
}

/** The reference: the keyframe decoded alone by a one-shot ffmpeg with the same encoder settings. */
function oneShot(codec: 'h264' | 'hevc', units: Buffer[], width?: number): Buffer {
  const start = Buffer.from([0, 0, 0, 1]);
  const input = Buffer.concat(units.flatMap((n) => [start, n]));
  return execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-threads', '1', '-f', codec, '-i', 'pipe:0', '-frames:v', '1', ...(width ? ['-vf', `scale=${width}:-2`] : []), '-threads', '1', '-q:v', '4', '-huffman', 'default', '-c:v', 'mjpeg', '-f', 'image2pipe', 'pipe:1'], { input });
}

/** Snapshot decoders (ffmpeg children of this process reading h264/hevc and writing image2pipe). */
function decoderPids(): number[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  } catch {
    return [];
  }
  return out.split('\n').filter((l) => l.includes('ffmpeg') && l.includes('image2pipe') && !l.includes('-frames:v')).map((l) => Number(l.trim().split(/\s+/)[0]));
}

const frameOf = (track: Track, data: Buffer[], i: number): Frame => ({ track, timestamp: i * 3600, keyframe: true, data });

let h264b: Buffer[][];
let h264: Buffer[][];
let h265: Buffer[][];
let h265open: Buffer[][];
before(async () => {
  [h264b, h264, h265, h265open] = await Promise.all([keyframes('h264', 3), keyframes('h264', 0), keyframes('hevc', 4), keyframes('hevc', 4, true)]);
});
after(async () => {
  await waitFor('no decoder left', () => decoderPids().length === 0, 3000);
});

for (const [name, codec, track, get] of [
  ['H.264 with B-frames', 'h264', H264, () => h264b],
  ['H.264 without B-frames', 'h264', H264, () => h264],
  ['H.265 with B-frames', 'hevc', H265, () => h265],
  ['H.265 open-GOP (CRA keyframes)', 'hevc', H265, () => h265open],
] as const) {
  test(`one decoder turns each ${name} keyframe asked into that keyframe's JPEG, with one process`, { timeout: 30000 }, async () => {
    const keys = get();
    const dec = new SnapshotDecoder({ ffmpegBin: FFMPEG, grace, codec: track.codec.name as 'H264' | 'H265', width: 320, stream: 'x' });
    try {
      const pid = dec.pid;
      // The references first: oneShot blocks this process's event loop while its ffmpeg runs, and
      // a JPEG left unread meanwhile would look like a picture the decoder holds back.
      const refs = [0, 1, 2].map((i) => oneShot(codec, keys[i]!, 320));
      // Out of order and repeated, as requests would ask them.
      for (const [n, i] of [0, 1, 2, 1, 1, 0, 2].entries()) {
        const t0 = performance.now();
        const jpeg = await dec.decode(frameOf(track, keys[i]!, n));
        const ms = performance.now() - t0;
        assert.ok(jpeg.equals(refs[i]!), `request ${n} (keyframe ${i}) got keyframe ${i}'s picture`);
        // After the first (ffmpeg starting), a keyframe is out in one decode, not after a later request.
        if (n > 1) assert.ok(ms < 1000, `request ${n} answered in ${ms.toFixed(0)} ms`);
      }
      assert.equal(dec.pid, pid);
      assert.deepEqual(decoderPids(), [pid]);
      console.log(`# ${name}: ${dec.written} copies written for 7 decodes`);
      // Most cameras: no B-frames, so each request costs one decode and no more.
      if (name === 'H.264 without B-frames') assert.equal(dec.written, 7);
    } finally {
      dec.close();
      await dec.done;
    }
    assert.equal(liveObjects().SnapshotDecoder ?? 0, 0);
  });
}

test('decode() after an abort still answers the next keyframe with its own picture', { timeout: 20000 }, async () => {
  const dec = new SnapshotDecoder({ ffmpegBin: FFMPEG, grace, codec: 'H264', stream: 'x' });
  try {
    const gone = new AbortController();
    const p = dec.decode(frameOf(H264, h264b[0]!, 0), gone.signal);
    gone.abort();
    await assert.rejects(p, /abandoned/);
    assert.equal(dec.busy, false);
    const jpeg = await dec.decode(frameOf(H264, h264b[2]!, 1));
    assert.ok(jpeg.equals(oneShot('h264', h264b[2]!)));
  } finally {
    dec.close();
    await dec.done;
  }
});

/** A live stream whose keyframes the test emits; a viewer keeps it running. */
async function liveStream(name: string, track: Track = H264): Promise<{ stream: Stream; emit: (data: Buffer[]) => Frame; src: () => ScriptedSource; close: () => Promise<void> }> {
  let source: ScriptedSource | undefined;
  const stream = new Stream(name, ['test://' + name], settings, (u) => (source = new ScriptedSource(u, { outcome: 'ok', after: 0 }, [track])));
  const viewer = new TestViewer('v-' + name, { video: ['H264', 'H265'] });
  await stream.attach(viewer);
  let i = 0;
  return {
    stream,
    src: () => source!,
    emit: (data) => {
      source!.emitFrame({ timestamp: i++ * 3600, keyframe: true, data }, track);
      const held = stream.lastKeyframe;
      assert.ok(held && held.data.length === data.length && held.data.every((d, j) => d.equals(data[j]!)), 'the stream holds the emitted keyframe (a copy of it)');
      return held;
    },
    close: async () => {
      viewer.close();
      stream.close();
      await stream.done;
    },
  };
}

test('pool: a JPEG is reused while its keyframe is the latest (no decode, whatever snapshot_cache), a new keyframe is decoded by the same process, concurrent requests share one decode', { timeout: 30000 }, async () => {
  const pool = new SnapshotPool({ ffmpegBin: FFMPEG, grace, maxDecoders: 4, cacheMs: 0, timeoutMs: 3000 });
  const cam = await liveStream('cam');
  try {
    cam.emit(h264b[0]!);
    const a = await pool.jpeg(cam.stream, 320);
    const pid = decoderPids();
    assert.equal(pid.length, 1);
    assert.ok(a.equals(oneShot('h264', h264b[0]!, 320)));
    // Same keyframe: the same buffer, at once.
    assert.equal(await pool.jpeg(cam.stream, 320), a);
    cam.emit(h264b[1]!);
    const burst = await Promise.all(Array.from({ length: 20 }, () => pool.jpeg(cam.stream, 320)));
    assert.ok(burst[0]!.equals(oneShot('h264', h264b[1]!, 320)), 'the new keyframe');
    assert.ok(burst.every((b) => b === burst[0]), 'one decode for all 20');
    assert.deepEqual(decoderPids(), pid, 'no process started for the new keyframe');
    // Another size is another decoder.
    await pool.jpeg(cam.stream, 160);
    assert.equal(pool.alive, 2);
    assert.equal(liveObjects().SnapshotDecoder, 2);
  } finally {
    await pool.close();
    await cam.close();
  }
  assert.equal(liveObjects().SnapshotDecoder ?? 0, 0);
  assert.deepEqual(decoderPids(), []);
});

test('pool: a decoder stops after its quiet period, and a request before it keeps it', { timeout: 30000 }, async () => {
  const pool = new SnapshotPool({ ffmpegBin: FFMPEG, grace, maxDecoders: 4, cacheMs: 0, timeoutMs: 3000, keepMs: 800 });
  const cam = await liveStream('quiet');
  try {
    cam.emit(h264[0]!);
    await pool.jpeg(cam.stream);
    const [pid] = decoderPids();
    for (let i = 1; i <= 3; i++) {
      // Requests 400 ms apart: each inside the quiet period of the one before.
      await new Promise((r) => setTimeout(r, 400));
      cam.emit(h264[i % h264.length]!);
      await pool.jpeg(cam.stream);
      assert.deepEqual(decoderPids(), [pid], `request ${i} kept the decoder`);
    }
    const t0 = performance.now();
    await waitFor('the decoder to stop after its quiet period', () => decoderPids().length === 0, 3000);
    assert.ok(performance.now() - t0 >= 500, 'not before its quiet period');
    assert.equal(pool.alive, 0);
    assert.equal(liveObjects().SnapshotDecoder ?? 0, 0);
    // And the next request starts one again.
    cam.emit(h264[1]!);
    assert.ok((await pool.jpeg(cam.stream)).equals(oneShot('h264', h264[1]!)));
  } finally {
    await pool.close();
    await cam.close();
  }
});

test('pool: removing the stream stops its decoders; a codec change restarts the decoder in the new input format', { timeout: 30000 }, async () => {
  const pool = new SnapshotPool({ ffmpegBin: FFMPEG, grace, maxDecoders: 4, cacheMs: 0, timeoutMs: 3000 });
  const cam = await liveStream('gone');
  const other = await liveStream('h265', H265);
  try {
    cam.emit(h264[0]!);
    await pool.jpeg(cam.stream);
    await pool.jpeg(cam.stream, 320);
    other.emit(h265[0]!);
    assert.ok((await pool.jpeg(other.stream)).equals(oneShot('hevc', h265[0]!)));
    assert.equal(decoderPids().length, 3);
    cam.stream.close();
    await waitFor("the removed stream's two decoders to stop", () => decoderPids().length === 1, 3000);
    assert.equal(pool.alive, 1);
    // The H.265 camera comes back as H.264 (same stream, new track): a new decoder reads h264.
    const before = decoderPids();
    other.src().emitFrame({ timestamp: 999_000, keyframe: true, data: h264b[1]! }, H264);
    assert.ok((await pool.jpeg(other.stream)).equals(oneShot('h264', h264b[1]!)));
    const now = decoderPids();
    assert.equal(now.length, 1);
    assert.notDeepEqual(now, before);
  } finally {
    await pool.close();
    await cam.close();
    await other.close();
  }
  assert.deepEqual(decoderPids(), []);
});

test('pool: decoders alive count against maxDecoders; an idle one gives its slot, busy ones refuse', { timeout: 30000 }, async () => {
  const pool = new SnapshotPool({ ffmpegBin: FFMPEG, grace, maxDecoders: 2, cacheMs: 0, timeoutMs: 3000 });
  const cam = await liveStream('bound');
  // A stream that never gives a keyframe: its snapshots hold their slot while they wait.
  const mute = new Stream('mute', ['test://mute'], settings, (u) => new ScriptedSource(u, { outcome: 'ok', after: 0 }, [H264]));
  try {
    cam.emit(h264[0]!);
    await pool.jpeg(cam.stream, 160);
    await pool.jpeg(cam.stream, 200);
    assert.equal(pool.alive, 2);
    // A third size: the least recently used idle decoder (160) is closed for it.
    await pool.jpeg(cam.stream, 240);
    assert.equal(pool.alive, 2);
    await waitFor('two decoders', () => decoderPids().length === 2, 3000);
    // Two snapshots waiting for a keyframe take both slots (closing the idle decoders); a third size is refused.
    const gone = new AbortController();
    const waits = [pool.jpeg(mute, 160, undefined, gone.signal), pool.jpeg(mute, 200, undefined, gone.signal)];
    await assert.rejects(pool.jpeg(cam.stream, 280), SnapshotsBusy);
    // The same keyframe at a size already decoded is still answered (no slot needed)... once its decoder is gone, from its JPEG.
    assert.ok((await pool.jpeg(cam.stream, 240)).length > 0);
    gone.abort();
    await Promise.allSettled(waits);
    await waitFor('every decoder gone', () => decoderPids().length === 0, 3000);
  } finally {
    await pool.close();
    await cam.close();
    mute.close();
    await mute.done;
  }
});

test('pool: streams whose keyframes carry the same parameter sets share one decoder, each getting its own picture; others get their own; a decoder goes with the last stream using it', { timeout: 40000 }, async () => {
  // Two slots for three streams: sharing is what keeps every decoder alive (no restart per request).
  const pool = new SnapshotPool({ ffmpegBin: FFMPEG, grace, maxDecoders: 2, cacheMs: 0, timeoutMs: 3000 });
  const a = await liveStream('same-a');
  const b = await liveStream('same-b');
  const c = await liveStream('other-c');
  try {
    assert.ok(!parameterSetsOf(frameOf(H264, h264[0]!, 0)).equals(parameterSetsOf(frameOf(H264, h264b[0]!, 0))), 'the clips differ in their parameter sets');
    let pid: number[] | undefined;
    for (let round = 0; round < 4; round++) {
      const ka = h264[round % h264.length]!;
      const kb = h264[(round + 1) % h264.length]!;
      const kc = h264b[round % h264b.length]!;
      a.emit(ka);
      b.emit(kb);
      c.emit(kc);
      // Asked at once: the shared decoder takes them one after the other.
      const [ja, jb, jc] = await Promise.all([pool.jpeg(a.stream, 320), pool.jpeg(b.stream, 320), pool.jpeg(c.stream, 320)]);
      assert.ok(ja.equals(oneShot('h264', ka, 320)), `round ${round}: a got its own keyframe's picture`);
      assert.ok(jb.equals(oneShot('h264', kb, 320)), `round ${round}: b got its own keyframe's picture`);
      assert.ok(jc.equals(oneShot('h264', kc, 320)), `round ${round}: c got its own keyframe's picture`);
      assert.equal(pool.alive, 2, 'a and b share one decoder, c has its own');
      pid ??= decoderPids().sort();
      assert.deepEqual(decoderPids().sort(), pid, `round ${round}: no decoder restarted`);
    }
    // a goes: b still uses the shared decoder.
    await a.close();
    assert.equal(pool.alive, 2);
    b.emit(h264[0]!);
    assert.ok((await pool.jpeg(b.stream, 320)).equals(oneShot('h264', h264[0]!, 320)));
    assert.deepEqual(decoderPids().sort(), pid);
    // b goes too: the shared decoder with it.
    await b.close();
    await waitFor('the shared decoder gone with its last stream', () => decoderPids().length === 1 && pool.alive === 1, 3000);
  } finally {
    await pool.close();
    await a.close();
    await b.close();
    await c.close();
  }
  assert.equal(liveObjects().SnapshotDecoder ?? 0, 0);
});
