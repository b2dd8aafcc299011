// Short clips encoded by ffmpeg at test time, split into camrelay's frames: H.264/H.265 access
// units (NAL units without start codes), AAC access units (ADTS headers removed), Opus packets.
import { spawn } from 'node:child_process';

export async function ffmpegOut(args: string[], timeoutMs = 30_000): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const p = spawn('/usr/bin/ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`ffmpeg exited ${code}: ${err.slice(0, 300)}`));
    });
  });
}

export function splitAnnexB(data: Buffer): Buffer[] {
  const starts: Array<[at: number, len: number]> = [];
  for (let i = 0; i + 3 <= data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0) {
      if (data[i + 2] === 1) starts.push([i, 3]);
      else if (data[i + 2] === 0 && data[i + 3] === 1) starts.push([i++, 4]);
      else continue;
      i += 2;
    }
  }
  return starts.map(([at, len], k) => data.subarray(at + len, k + 1 < starts.length ? starts[k + 1]![0] : data.length)).filter((n) => n.length > 0);
}

/** Access units of a one-slice-per-picture stream: every VCL NAL ends one. */
export function accessUnits(nals: Buffer[], isVcl: (n: Buffer) => boolean): Buffer[][] {
  const units: Buffer[][] = [];
  let pending: Buffer[] = [];
  for (const n of nals) {
    pending.push(n);
    if (isVcl(n)) {
      units.push(pending);
      pending = [];
    }
  }
  return units;
}

export async function h265Units(frames = 50, gop = 25): Promise<Buffer[][]> {
  const data = await ffmpegOut(['-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25', '-frames:v', String(frames), '-c:v', 'libx265', '-preset', 'ultrafast',
    '-x265-params', `keyint=${gop}:min-keyint=${gop}:bframes=0:repeat-headers=1:log-level=error`, '-pix_fmt', 'yuv420p', '-f', 'hevc', '-']);
  return accessUnits(splitAnnexB(data), (n) => ((n[0]! >> 1) & 0x3f) < 32);
}

/** AAC-LC access units and the clip's AudioSpecificConfig (hex). */
export async function aacUnits(seconds = 2, rate = 48000, channels = 1): Promise<{ units: Buffer[]; config: string }> {
  const data = await ffmpegOut(['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${rate}`, '-t', String(seconds), '-ac', String(channels), '-c:a', 'aac', '-f', 'adts', '-']);
  const units: Buffer[] = [];
  let config = '';
  for (let o = 0; o + 7 <= data.length; ) {
    const len = ((data[o + 3]! & 0x03) << 11) | (data[o + 4]! << 3) | (data[o + 5]! >> 5);
    const head = data[o + 1]! & 1 ? 7 : 9;
    if (!config) {
      const profile = (data[o + 2]! >> 6) + 1;
      const freq = (data[o + 2]! >> 2) & 0x0f;
      const ch = ((data[o + 2]! & 1) << 2) | (data[o + 3]! >> 6);
      config = ((profile << 11) | (freq << 7) | (ch << 3)).toString(16).padStart(4, '0');
    }
    units.push(data.subarray(o + head, o + len));
    o += len;
  }
  return { units, config };
}

/** Opus packets of 20 ms at 48 kHz (Ogg pages read, OpusHead and OpusTags left out). */
export async function opusPackets(seconds = 2): Promise<Buffer[]> {
  const data = await ffmpegOut(['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', String(seconds), '-ac', '2', '-c:a', 'libopus', '-frame_duration', '20', '-f', 'ogg', '-']);
  const packets: Buffer[] = [];
  let partial: Buffer[] = [];
  for (let o = 0; o + 27 <= data.length; ) {
    const segs = data[o + 26]!;
    const table = data.subarray(o + 27, o + 27 + segs);
    let p = o + 27 + segs;
    for (const l of table) {
      partial.push(data.subarray(p, p + l));
      p += l;
      if (l < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    o = p;
  }
  return packets.slice(2);
}
