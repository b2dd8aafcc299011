import type { Owned } from './owned.js';
import type { Frame, MediaRequest, Track } from './media.js';

export interface SourceInfo {
  /** The configured URL, credentials masked. */
  url: string;
  [key: string]: unknown;
}

/**
 * A producer: one connection to a camera or one child process. Owned by exactly one Stream.
 * Events: 'frame' (Frame) after start() resolved; 'close' (err?: Error) exactly once, with an
 * error when it ended by itself (camera dropped, process died), without one after close().
 */
export interface Source extends Owned {
  readonly url: string;
  /**
   * Connects and learns the tracks. Rejects with a SourceError. When `signal` aborts, whatever
   * was made is closed and the promise rejects. `want` is what the consumers present at the
   * start asked for: a source may leave out tracks nobody wants (a camera's audio, metadata).
   */
  start(signal: AbortSignal, want: MediaRequest): Promise<Track[]>;
  info(): SourceInfo;
}

/** The payload of a source's 'frame' event, named for listeners' signatures. */
export type FrameListener = (frame: Frame) => void;

/** Makes a source for a URL; throws a permanent SourceError for a URL it cannot serve. */
export type SourceFactory = (url: string, streamName: string) => Source;
