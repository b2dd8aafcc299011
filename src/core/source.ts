import type { Owned } from './owned.js';
import type { CodecName, Frame, Kind, MediaRequest, Track } from './media.js';

export interface SourceInfo {
  /** The configured URL, credentials masked. */
  url: string;
  [key: string]: unknown;
}

/** The events of a Source (besides 'close'). */
export interface SourceEvents {
  /** One access unit, after start() resolved. */
  frame: [frame: Frame];
}

/**
 * A producer: one connection to a camera or one child process. Owned by exactly one Stream.
 * Events: 'frame' (Frame) after start() resolved; 'close' (err?: Error) exactly once, with an
 * error when it ended by itself (camera dropped, process died), without one after close().
 */
export interface Source extends Owned<SourceEvents> {
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

/**
 * What a source reads of a stream of this process rather than of a camera (a transcode:
 * `ffmpeg:cam#audio=opus` reads the audio of stream `cam`). Whoever knows the URL syntax says
 * so (sources/factory.ts); core only compares `stream` with a stream's name.
 */
export interface StreamInput {
  stream: string;
  /** The kinds it reads of that stream. */
  kinds: readonly Kind[];
}

/** Says, without making anything, which stream a source URL reads; undefined: none (a camera, a file). */
export type StreamInputOf = (url: string) => StreamInput | undefined;

/**
 * A transcode a stream starts by itself (`stream_defaults.transcode: auto`) for a consumer that
 * cannot take what its sources give: an H.264-only browser of an H.265 camera, an MP4 player of
 * G.711 audio. It reads the stream back and gives one kind in one codec.
 */
export interface AutoTranscode {
  url: string;
  kind: Kind;
  codec: CodecName;
}

/** A factory together with its knowledge of which sources read streams. */
export interface SourceMaker {
  make: SourceFactory;
  reads: StreamInputOf;
  /** The automatic transcodes of a stream, in the order they are tried; none when undefined. */
  transcodes?: (streamName: string) => readonly AutoTranscode[];
}

/** A bare factory reads no stream: nothing it makes is a transcode of one. */
export function toSourceMaker(m: SourceFactory | SourceMaker): SourceMaker {
  return typeof m === 'function' ? { make: m, reads: () => undefined } : m;
}
