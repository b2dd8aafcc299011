// A short H.264 clip encoded by ffmpeg at test time, split into access units (NAL units without
// start codes), for test cameras that packetize it themselves.
import { spawn } from 'node:child_process';
import { nalType } from '../../src/codecs/h264.js';
import { splitAnnexB } from './media-clips.js';

export interface H264Clip {
  /** One entry per frame: the NAL units of that access unit, parameter sets in front of each IDR. */
  units: Buffer[][];
  fps: number;
}

/** `frames` frames of testsrc at `size`, one slice per frame, no B-frames, a keyframe every `gop`. */
export async function encodeH264Clip(opts: { size?: string; frames?: number; fps?: number; gop?: number } = {}): Promise<H264Clip> {
  const { size = '320x180', frames = 50, fps = 25, gop = 25 } = opts;
  const args = ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${fps}`, '-frames:v', String(frames),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'baseline', '-g', String(gop), '-bf', '0', '-x264-params', 'repeat-headers=1:slices=1:threads=1', '-pix_fmt', 'yuv420p', '-f', 'h264', '-'];
  const data = await new Promise<Buffer>((resolve, reject) => {
    const p = spawn('/usr/bin/ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg exited ${code}: ${err.slice(0, 300)}`))));
  });
  const units: Buffer[][] = [];
  let pending: Buffer[] = [];
  for (const nal of splitAnnexB(data)) {
    const t = nalType(nal);
    if (t === 9) continue;
    pending.push(nal);
    // A slice ends the access unit: one slice per frame was asked for.
    if (t === 1 || t === 5) {
      units.push(pending);
      pending = [];
    }
  }
  if (units.length === 0) throw new Error('ffmpeg made no H.264 frames');
  return { units, fps };
}
