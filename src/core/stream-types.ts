// The shapes a Stream is configured with and reports, apart from the class (stream.ts).
import type { BackoffSettings } from './backoff.js';
import type { GopCacheSettings } from './gop-cache.js';
import type { Source } from './source.js';
import type { StreamState } from './stream-states.js';

export interface StreamSettings {
  /** ms to keep the source after the last consumer left; 0 stops it at once. */
  idleTimeout: number;
  /** ms a consumer waits for the source to go live before it gets an error. */
  startTimeout: number;
  backoff: BackoffSettings;
  /** Default DEFAULT_GOP_CACHE. */
  gopCache?: GopCacheSettings;
  /** ms a live source may deliver no frame before it is restarted like a failed one; undefined: never. */
  stallTimeout?: number;
  /**
   * 'auto' (default): a consumer that cannot take the sources' codec gets a shared transcode of
   * the stream (SourceMaker.transcodes), started by the first such consumer, stopped with the
   * last; 'never': it gets what there is, or an error naming the codec.
   */
  transcode?: 'auto' | 'never';
}

export interface BackoffEvent {
  attempt: number;
  delay: number;
  ceiling: number;
  error: Error;
  /** Index of the source in the stream's list. */
  source: number;
}

export interface StreamEvents {
  state: [state: StreamState];
  backoff: [event: BackoffEvent];
  /** A source of the list (or a publisher) was made and is starting. */
  source: [source: Source];
}

/** Which source of its stream a consumer takes a kind from. */
export interface SourceBinding {
  /** Its index in the stream's list (configured sources, then the automatic transcodes). */
  index: number;
  url: string;
  /** One of the stream's automatic transcodes (stream_defaults.transcode: auto). */
  auto: boolean;
}
