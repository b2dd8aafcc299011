import type { Owned } from './owned.js';
import type { Frame, MediaRequest } from './media.js';

export interface ConsumerInfo {
  type: string;
  id: string;
  remote_addr?: string;
  user_agent?: string;
  bytes_send?: number;
  [key: string]: unknown;
}

/**
 * An output attached to a stream (a WebRTC peer, an RTSP player, ...). Its owner is the output
 * layer; the stream only holds it in a set and drops it when it emits 'close'.
 */
export interface Consumer extends Owned {
  readonly id: string;
  readonly request: MediaRequest;
  /**
   * Our own ffmpeg reading this stream back (a transcode in its source list): it does not keep
   * the stream alive, cannot start it, and never takes tracks from a source reading the stream.
   */
  readonly internal?: boolean;
  /** Only frames of the tracks the consumer asked for; video starts at a keyframe. */
  onFrame(frame: Frame): void;
  info(): ConsumerInfo;
}

/** What a consumer is given to start video at once: the stream's current GOP (Stream.catchUp). */
export interface CatchUpSource {
  catchUp?(c: Consumer): readonly Frame[];
}

/**
 * Feeds a consumer that is about to start its video the stream's current GOP through its own
 * onFrame, rather than letting it wait up to a GOP for the next keyframe; stops if it closes.
 */
export function replayCatchUp(stream: CatchUpSource, c: Consumer): void {
  for (const f of stream.catchUp?.(c) ?? []) {
    if (c.closed) return;
    c.onFrame(f);
  }
}
