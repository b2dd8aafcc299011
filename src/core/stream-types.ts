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
