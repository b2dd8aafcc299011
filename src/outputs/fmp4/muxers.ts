// Where viewers find the muxer of their stream and codec set. A muxer is made by its first viewer
// and belongs to its viewers together: it closes when the last leaves, or with its stream.
import type { MediaRequest } from '../../core/media.js';
import type { Stream } from '../../core/stream.js';
import { requestKey } from './codecs.js';
import { Fmp4Muxer } from './muxer.js';
import type { Fmp4Viewer } from './viewer.js';

const byStream = new WeakMap<Stream, Map<string, Fmp4Muxer>>();
const listeners = new Set<(v: Fmp4Viewer, stream: Stream) => void>();

/** Tells `listener` of every viewer added from now on (metrics counts them and their drops). */
export function onFmp4Viewer(listener: (v: Fmp4Viewer, stream: Stream) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The muxers of `stream` (for tests and /api/debug). */
export function muxersOf(stream: Stream): Fmp4Muxer[] {
  return [...(byStream.get(stream)?.values() ?? [])];
}

/**
 * Adds `viewer` to the muxer of `stream` for `request`, starting one if there is none. The viewer
 * is answered (its sink's start) once the tracks are known and closes with the muxer's error if
 * it cannot start.
 */
export function watchFmp4(stream: Stream, request: MediaRequest, viewer: Fmp4Viewer): void {
  for (const l of listeners) l(viewer, stream);
  if (stream.closed) {
    viewer.close(new Error('stream was removed'));
    return;
  }
  let table = byStream.get(stream);
  if (!table) byStream.set(stream, (table = new Map()));
  const key = requestKey(request);
  let muxer = table.get(key);
  if (!muxer || muxer.closed) {
    const m = new Fmp4Muxer(stream, request);
    muxer = m;
    table.set(key, m);
    const onStreamClose = () => m.close();
    stream.once('close', onStreamClose);
    m.once('close', () => {
      stream.off('close', onStreamClose);
      if (table.get(key) === m) table.delete(key);
    });
    void m.start();
  }
  muxer.add(viewer);
}
