import { maskCredentials } from '../core/log.js';
import type { Stream } from '../core/stream.js';
import { describeTrack } from '../core/media.js';

/** One stream as go2rtc's GET /api/streams shows it, plus camrelay's own `state`/`error` fields. */
export function streamView(s: Stream): Record<string, unknown> {
  const running = s.source;
  const producers = s.sources.map((url) => {
    const base: Record<string, unknown> = { url: maskCredentials(url) };
    if (running && running.url === url) {
      Object.assign(base, running.info(), { url: maskCredentials(url), medias: s.tracks.map(describeTrack) });
    }
    return base;
  });
  const view: Record<string, unknown> = {
    producers,
    consumers: s.consumers.map((c) => c.info()),
    state: s.state,
  };
  if (s.lastError) view.error = maskCredentials(s.lastError.message);
  return view;
}
