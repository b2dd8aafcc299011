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

/** Nobody waits for this snapshot any more (its requests went away). */
export class SnapshotAborted extends Error {
  constructor() {
    super('snapshot abandoned: its requests ended');
  }
}

/**
 * The latest keyframe: at once when live, else from a start of the source that ends right after.
 * An abort detaches at once, so an idle stream started only for this goes back to idle.
 */
export async function captureKeyframe(stream: Stream, timeoutMs: number, signal?: AbortSignal): Promise<Frame> {
  const held = stream.state === 'live' ? stream.lastKeyframe : undefined;
  if (held) return held;
  if (signal?.aborted) throw new SnapshotAborted();
  return new Promise<Frame>((resolve, reject) => {
    let settled = false;
    const end = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      consumer.close();
      outcome();
    };
    const onAbort = (): void => end(() => reject(new SnapshotAborted()));
    const timer = setTimeout(() => end(() => reject(new SourceError(`no keyframe from stream "${stream.name}" within ${timeoutMs} ms`))), timeoutMs);
    const consumer = new VideoFrameConsumer('snapshot', (f) => {
      if (f.keyframe) end(() => resolve(f));
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    // Closed by someone else: the stream was closed or deleted while the request waited.
    consumer.once('close', () => end(() => reject(new SourceError(`stream "${stream.name}" closed before it gave a keyframe`))));
    stream.attach(consumer).then(
      (tracks) => {
        if (!tracks.some((t) => t.kind === 'video')) end(() => reject(new SourceError(`stream "${stream.name}" has no H.264/H.265 video`)));
      },
      (e: unknown) => end(() => reject(e instanceof Error ? e : new Error(String(e)))),
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

/** Decodes one keyframe; an abort stops the decoder (then this rejects with SnapshotAborted). */
export async function keyframeToJpeg(frame: Frame, opts: SnapshotOptions, signal?: AbortSignal): Promise<Buffer> {
  if (signal?.aborted) throw new SnapshotAborted();
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
  const onAbort = (): void => child.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => chunks.push(c));
    child.stdin!.end(toAnnexB(frame.data));
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      child.exited,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('snapshot decoder took over 5 s')), 5000))),
    ]).finally(() => clearTimeout(timer));
    if (signal?.aborted) throw new SnapshotAborted();
    const jpeg = Buffer.concat(chunks);
    if (exit.code !== 0 || jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) {
      throw new Error(`snapshot decoder failed (${child.describeExit(exit)}): ${child.lastStderr().slice(-2).join(' | ')}`);
    }
    return jpeg;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    child.close();
    await child.done;
  }
}
