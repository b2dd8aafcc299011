// JPEG snapshots: the latest keyframe. A live stream answers from the keyframe it already holds;
// an idle one is started for one keyframe and stopped again. The keyframe is decoded by the
// stream's long-lived snapshot decoder (snapshot-decoder.ts, kept by snapshot-pool.ts).
import type { Stream } from '../core/stream.js';
import type { Frame } from '../core/media.js';
import { SourceError } from '../core/errors.js';
import { VideoFrameConsumer } from './frame-consumer.js';

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
