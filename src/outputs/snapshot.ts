// JPEG snapshots: the latest keyframe, decoded by a short-lived ffmpeg. A live stream answers
// from the keyframe it already holds; an idle one is started for one keyframe and stopped again.
import type { Stream } from '../core/stream.js';
import type { Frame } from '../core/media.js';
import { SourceError } from '../core/errors.js';
import { toAnnexB } from '../codecs/annexb.js';
import { ChildProcessOwner, type StopGrace } from '../process/child.js';
import { VideoFrameConsumer } from './frame-consumer.js';

export interface SnapshotOptions {
  ffmpegBin: string;
  grace: StopGrace;
  width?: number;
  height?: number;
  /** How long an idle stream may take to give its first keyframe. */
  timeoutMs: number;
}

/** The latest keyframe: at once when live, else from a start of the source that ends right after. */
export async function captureKeyframe(stream: Stream, timeoutMs: number): Promise<Frame> {
  const held = stream.state === 'live' ? stream.lastKeyframe : undefined;
  if (held) return held;
  return new Promise<Frame>((resolve, reject) => {
    const timer = setTimeout(() => {
      consumer.close();
      reject(new SourceError(`no keyframe from stream "${stream.name}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const consumer = new VideoFrameConsumer('snapshot', (f) => {
      if (!f.keyframe) return;
      clearTimeout(timer);
      consumer.close();
      resolve(f);
    });
    stream.attach(consumer).then(
      (tracks) => {
        if (!tracks.some((t) => t.kind === 'video')) {
          clearTimeout(timer);
          consumer.close();
          reject(new SourceError(`stream "${stream.name}" has no H.264/H.265 video`));
        }
      },
      (e: unknown) => {
        clearTimeout(timer);
        consumer.close();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Scale filter keeping the aspect ratio when only one side is given (even sizes for the encoder). */
export function scaleFilter(width?: number, height?: number): string[] {
  if (!width && !height) return [];
  return ['-vf', `scale=${width ?? -2}:${height ?? -2}`];
}

/** Niceness of snapshot decoders: the lowest, so a burst of them yields to everything else (0 is camrelay's own). */
export const SNAPSHOT_NICE = 19;

export async function keyframeToJpeg(frame: Frame, opts: SnapshotOptions): Promise<Buffer> {
  const demuxer = frame.track.codec.name === 'H265' ? 'hevc' : 'h264';
  const child = new ChildProcessOwner({
    bin: opts.ffmpegBin,
    label: 'ffmpeg-snapshot',
    grace: opts.grace,
    stdout: 'pipe',
    // A snapshot may wait a few ms; the event loop and the streams' own children may not.
    nice: SNAPSHOT_NICE,
    idle: true,
    // One thread per decode: several decoders at once then share the cores instead of each taking all.
    args: ['-hide_banner', '-loglevel', 'error', '-threads', '1', '-f', demuxer, '-i', 'pipe:0', '-frames:v', '1', ...scaleFilter(opts.width, opts.height), '-q:v', '4', '-f', 'image2', '-c:v', 'mjpeg', 'pipe:1'],
  });
  try {
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => chunks.push(c));
    child.stdin!.end(toAnnexB(frame.data));
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      child.exited,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('snapshot decoder took over 5 s')), 5000))),
    ]).finally(() => clearTimeout(timer));
    const jpeg = Buffer.concat(chunks);
    if (exit.code !== 0 || jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) {
      throw new Error(`snapshot decoder failed (${child.describeExit(exit)}): ${child.lastStderr().slice(-2).join(' | ')}`);
    }
    return jpeg;
  } finally {
    child.close();
    await child.done;
  }
}
