// Issue 17's CPU per snapshot: a keyframe of the bench clip turned into a JPEG by a one-shot
// ffmpeg per request (what camrelay did before its long-lived decoders: probe, decoder and
// encoder set-up every time) and by camrelay's SnapshotDecoder (src/outputs/snapshot-decoder.ts),
// which pays only the decode and encode. CPU is the ffmpeg processes' own (rusage of the one-shot,
// /proc of the decoder over its steady decodes, its start excluded), at full size and at the
// width a dashboard thumbnail asks.
import { spawnSync } from 'node:child_process';
import { toAnnexB } from '../src/codecs/annexb.js';
import { SnapshotDecoder } from '../src/outputs/snapshot-decoder.js';
import type { Frame, Track } from '../src/core/media.js';
import { readAccessUnits, describeClip } from './clip.js';
import { fmt, median, sleep, type BenchContext } from './context.js';
import { cpuSeconds } from './proc.js';

const FFMPEG = '/usr/bin/ffmpeg';
const TARGET_RATIO = 0.2;
const TRACK: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 } };

interface Row {
  width: number | undefined;
  oneShotMs: number;
  decoderMs: number;
  copies: number;
}

/** CPU (user + system, ms) of one ffmpeg run per request, the keyframe on its stdin. */
function oneShotMs(nals: Buffer[], width: number | undefined): number {
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', FFMPEG, '-hide_banner', '-loglevel', 'error', '-threads', '1', '-f', 'h264', '-i', 'pipe:0', '-frames:v', '1',
    ...(width ? ['-vf', `scale=${width}:-2`] : []), '-threads', '1', '-q:v', '4', '-huffman', 'default', '-c:v', 'mjpeg', '-f', 'image2pipe', 'pipe:1'], { input: toAnnexB(nals), maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`one-shot ffmpeg failed: ${r.stderr.toString().slice(-300)}`);
  const [u, s] = r.stderr.toString().trim().split('\n').at(-1)!.split(' ').map(Number);
  return (u! + s!) * 1000;
}

/** CPU ms of a live process; a decoder gone mid-measure is a failed run. */
function cpuMs(pid: number): number {
  const s = cpuSeconds(pid);
  if (s === undefined) throw new Error(`snapshot decoder ${pid} ended during the measure`);
  return s * 1000;
}

async function decoderMs(frames: Frame[], width: number | undefined, n: number): Promise<{ ms: number; copies: number }> {
  const dec = new SnapshotDecoder({ ffmpegBin: FFMPEG, grace: { quit: 500, term: 500 }, codec: 'H264', width, stream: 'bench' });
  try {
    await dec.decode(frames[0]!);
    // Its start's last copies out, then only steady decodes count; requests spaced as a dashboard's are.
    await sleep(300);
    const c0 = cpuMs(dec.pid!);
    const w0 = dec.written;
    for (let i = 0; i < n; i++) {
      await dec.decode(frames[(i + 1) % frames.length]!);
      await sleep(150);
    }
    return { ms: (cpuMs(dec.pid!) - c0) / n, copies: (dec.written - w0) / n };
  } finally {
    dec.close();
    await dec.done;
  }
}

export async function runSnapshotCpu(ctx: BenchContext): Promise<string> {
  const keys = readAccessUnits(ctx.clip.file).filter((a) => a.keyframe).slice(0, 8);
  const frames: Frame[] = keys.map((k, i) => ({ track: TRACK, timestamp: i * 3600, keyframe: true, data: k.nals }));
  const runs = ctx.quick ? 1 : 3;
  const n = ctx.quick ? 10 : 30;
  const rows: Row[] = [];
  for (const width of [undefined, 640]) {
    const one: number[] = [];
    const dec: number[] = [];
    const copies: number[] = [];
    for (let r = 0; r < runs; r++) {
      for (let i = 0; i < n / 3; i++) one.push(oneShotMs(keys[i % keys.length]!.nals, width));
      const d = await decoderMs(frames, width, n);
      dec.push(d.ms);
      copies.push(d.copies);
    }
    const row = { width, oneShotMs: median(one), decoderMs: median(dec), copies: median(copies) };
    rows.push(row);
    ctx.log(`snapshot-cpu: ${width ?? 'full'} width: one-shot ${fmt(row.oneShotMs)} ms, decoder ${fmt(row.decoderMs)} ms per snapshot (${fmt(row.decoderMs / row.oneShotMs, 3)})`);
  }
  return [
    '## CPU per snapshot: a process per request vs the long-lived decoder',
    '',
    `Command: \`${ctx.command}\`. Keyframes: the first 8 of the bench clip (${describeClip(ctx.clip)}). One-shot: \`ffmpeg -threads 1 -f h264 -i pipe:0 -frames:v 1 [-vf scale=W:-2] -threads 1 -q:v 4 -huffman default -c:v mjpeg\`, one run per request, CPU from its rusage (GNU time), median of ${runs * Math.round(n / 3)} runs. Decoder: camrelay's SnapshotDecoder (the same encoder settings), one process fed ${n} keyframes 150 ms apart after its first, CPU from /proc over those ${n} (its start excluded), median of ${runs} processes. Copies: keyframe copies written per snapshot (1 when the decoder holds no picture back).`,
    '',
    '| size | one-shot ms CPU | decoder ms CPU | decoder / one-shot | target ≤ 0.2 | copies per snapshot |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.width ? `${r.width} wide` : 'full (1920x1080)'} | ${fmt(r.oneShotMs)} | ${fmt(r.decoderMs)} | ${fmt(r.decoderMs / r.oneShotMs, 3)} | ${r.decoderMs / r.oneShotMs <= TARGET_RATIO ? 'met' : '**not met**'} | ${fmt(r.copies, 2)} |`),
  ].join('\n');
}
