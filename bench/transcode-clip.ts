// The transcode benchmark's camera video: 1080p25 H.265 as most current cameras send by default,
// encoded once with libx265 and cached beside the H.264 clip (bench/clip.ts), so that the bench
// machine spends no CPU on encoding the camera while it measures the transcode. Same picture as
// the H.264 clip (a noisy test pattern that keeps the encoder at its bitrate), same rate and GOP,
// so the pass-through figures of both clips compare.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { CACHE, CLIP_1080P, type Clip, type ClipSpec } from './clip.js';

export function describeH265Clip(c: Clip): string {
  return `${c.width}x${c.height} ${c.fps} fps H.265 Main, ${(c.actualBitrate / 1e6).toFixed(2)} Mbit/s, IDR every ${c.gop / c.fps} s, ${c.seconds} s looped`;
}

/** The H.265 clip's file, encoding it first when it is not cached (about a minute on 2 cores). */
export function ensureH265Clip(spec: ClipSpec = CLIP_1080P, log: (s: string) => void = () => {}): Clip {
  const name = `clip-${spec.height}p${spec.fps}-${spec.bitrate / 1e6}M-g${spec.gop}-${spec.seconds}s.h265`;
  const file = path.join(CACHE, name);
  const kbit = spec.bitrate / 1000;
  // A camera's stream: no B-frames, a fixed closed GOP (IDR, not CRA), rate-capped, the
  // parameter sets in front of every IDR (a camera repeats them; the file loops).
  const x265 = [
    `keyint=${spec.gop}`, `min-keyint=${spec.gop}`, 'scenecut=0', 'open-gop=0', 'bframes=0', 'repeat-headers=1',
    `vbv-maxrate=${kbit}`, `vbv-bufsize=${kbit}`, 'log-level=error',
  ].join(':');
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=${spec.fps},noise=alls=10:allf=t`,
    '-t', String(spec.seconds),
    '-c:v', 'libx265', '-preset', 'veryfast', '-profile:v', 'main', '-pix_fmt', 'yuv420p',
    '-b:v', `${kbit}k`, '-x265-params', x265,
    '-an', '-f', 'hevc',
  ];
  const command = `ffmpeg ${args.map((a) => (/^[\w./:=-]+$/.test(a) ? a : `'${a}'`)).join(' ')} ${name}`;
  if (!existsSync(file)) {
    mkdirSync(CACHE, { recursive: true });
    log(`encoding the H.265 benchmark clip once (${spec.seconds} s of ${spec.height}p): ${file}`);
    const tmp = `${file}.${process.pid}.tmp`;
    execFileSync('ffmpeg', [...args, tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
    renameSync(tmp, file);
  }
  const actualBitrate = (statSync(file).size * 8) / spec.seconds;
  return { ...spec, file, actualBitrate, command };
}
