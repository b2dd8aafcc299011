import { maskCredentials } from '../core/log.js';
import type { Stream } from '../core/stream.js';
import { describeTrack } from '../core/media.js';

/** One stream as go2rtc's GET /api/streams shows it, plus camrelay's own `state`/`error` fields. */
export function streamView(s: Stream): Record<string, unknown> {
  const running = s.running;
  const producers = s.sources.map((url) => {
    const base: Record<string, unknown> = { url: maskCredentials(url) };
    const src = running.find((r) => r.url === url);
    if (src) Object.assign(base, src.info(), { url: maskCredentials(url) });
    return base;
  });
  const view: Record<string, unknown> = {
    producers,
    consumers: s.consumers.map((c) => c.info()),
    state: s.state,
    medias: s.tracks.map(describeTrack),
  };
  if (s.lastError) view.error = maskCredentials(s.lastError.message);
  return view;
}
