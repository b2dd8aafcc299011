// The benchmark's video: encoded once with ffmpeg and cached, so that no benchmark spends CPU on
// encoding while it measures. A noisy test pattern keeps x264 at its target bitrate the whole
// time (a clean pattern would compress to a fraction of it), as a real camera at night does.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { packetizeH264 } from '../src/rtp/h264-packetizer.js';

// Under node_modules/.cache (gitignored, as other tools' caches), not in bench/: the clips are
// tens of MB and bench/ holds code.
export const CACHE = path.resolve(import.meta.dirname, '..', 'node_modules', '.cache', 'camrelay-bench');

export interface ClipSpec {
  width: number;
  height: number;
  fps: number;
  /** Target bitrate, bits per second. */
  bitrate: number;
  /** Frames from one keyframe to the next. */
  gop: number;
  seconds: number;
}

export const CLIP_1080P: ClipSpec = { width: 1920, height: 1080, fps: 25, bitrate: 4_000_000, gop: 50, seconds: 30 };
/** The house benchmark's clip where 16 cameras of CLIP_1080P are more than its camera process serves. */
export const CLIP_720P: ClipSpec = { width: 1280, height: 720, fps: 25, bitrate: 2_000_000, gop: 50, seconds: 30 };

export interface Clip extends ClipSpec {
  file: string;
  /** Measured from the file, bits per second. */
  actualBitrate: number;
  /** How it was made, for the report. */
  command: string;
}

export function describeClip(c: Clip): string {
  return `${c.width}x${c.height} ${c.fps} fps H.264 Main, ${(c.actualBitrate / 1e6).toFixed(2)} Mbit/s, keyframe every ${c.gop / c.fps} s, ${c.seconds} s looped`;
}

/** The clip's file, encoding it first when it is not cached. */
export function ensureClip(spec: ClipSpec = CLIP_1080P, log: (s: string) => void = () => {}): Clip {
  const name = `clip-${spec.height}p${spec.fps}-${spec.bitrate / 1e6}M-g${spec.gop}-${spec.seconds}s.h264`;
  const file = path.join(CACHE, name);
  const kbit = `${spec.bitrate / 1000}k`;
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=${spec.fps},noise=alls=10:allf=t`,
    '-t', String(spec.seconds),
    // A camera's stream: no B-frames, a fixed GOP, rate-capped.
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-bf', '0',
    '-g', String(spec.gop), '-keyint_min', String(spec.gop), '-sc_threshold', '0',
    '-b:v', kbit, '-maxrate', kbit, '-bufsize', kbit,
    '-an', '-f', 'h264',
  ];
  const command = `ffmpeg ${args.map((a) => (/^[\w./:-]+$/.test(a) ? a : `'${a}'`)).join(' ')} ${name}`;
  if (!existsSync(file)) {
    mkdirSync(CACHE, { recursive: true });
    log(`encoding the benchmark clip once (${spec.seconds} s of ${spec.height}p): ${file}`);
    const tmp = `${file}.${process.pid}.tmp`;
    execFileSync('ffmpeg', [...args, tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
    renameSync(tmp, file);
  }
  const actualBitrate = (statSync(file).size * 8) / spec.seconds;
  return { ...spec, file, actualBitrate, command };
}

/** One access unit of the clip: its NAL units (without start codes), in order. */
export interface AccessUnit {
  nals: Buffer[];
  keyframe: boolean;
}

/** Splits an Annex B stream into access units (same rule as gst-rtsp-server.py's h264-file). */
export function readAccessUnits(file: string): AccessUnit[] {
  const data = readFileSync(file);
  const nals: Buffer[] = [];
  let prev = -1;
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (prev >= 0) nals.push(trimZeros(data.subarray(prev, i)));
      prev = i + 3;
      i += 2;
    }
  }
  if (prev >= 0) nals.push(data.subarray(prev));
  const aus: AccessUnit[] = [];
  let cur: Buffer[] = [];
  let hasVcl = false;
  for (const nal of nals) {
    const t = nal[0]! & 0x1f;
    const vcl = t === 1 || t === 5;
    const firstMb0 = vcl && nal.length > 1 && (nal[1]! & 0x80) !== 0;
    if (hasVcl && (!vcl || firstMb0)) {
      aus.push({ nals: cur, keyframe: cur.some((n) => (n[0]! & 0x1f) === 5) });
      cur = [];
      hasVcl = false;
    }
    cur.push(nal);
    hasVcl ||= vcl;
  }
  if (cur.length) aus.push({ nals: cur, keyframe: cur.some((n) => (n[0]! & 0x1f) === 5) });
  return aus;
}

/** Per clip file: read once, however many reports quote it. */
const keyframePacketsByFile = new Map<string, number>();

/** The median number of RTP packets camrelay's WebRTC output makes of one of the clip's keyframes. */
export function keyframePackets(clip: Clip): number {
  let median = keyframePacketsByFile.get(clip.file);
  if (median === undefined) {
    const counts = readAccessUnits(clip.file)
      .filter((au) => au.keyframe)
      .map((au) => packetizeH264(au.nals).length)
      .sort((a, b) => a - b);
    median = counts[counts.length >> 1] ?? NaN;
    keyframePacketsByFile.set(clip.file, median);
  }
  return median;
}

/** A NAL unit followed by the zero byte of a 4-byte start code: drop trailing zeros. */
function trimZeros(b: Buffer): Buffer {
  let e = b.length;
  while (e > 0 && b[e - 1] === 0) e--;
  return b.subarray(0, e);
}
