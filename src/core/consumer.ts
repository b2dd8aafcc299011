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

// Outputs import these from here; they live with the rest of delivery gating.
export { replayCatchUp, type CatchUpSource } from './delivery-gate.js';
