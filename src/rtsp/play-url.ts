// What a player's RTSP URL asks for: `rtsp://host:8554/<stream>[?query]`, with go2rtc's query
// form (`?video&audio`, `?video=h264,h265`, `?audio=opus`) selecting the media and codecs.
import { isInternalQuery } from '../core/internal.js';
import { formatByQueryName } from '../codecs/table.js';
import { ALL_CODECS, type MediaRequest } from '../core/media.js';

export interface PlayTarget {
  /** The stream name, percent-decoded. */
  name: string;
  request: MediaRequest;
  /** One of our own ffmpeg transcodes reading the stream back (src/core/internal.ts). */
  internal: boolean;
}

/** The stream name and media request of a DESCRIBE URL; undefined when it names no stream. */
export function parsePlayUrl(url: string): PlayTarget | undefined {
  const m = /^rtsps?:\/\/[^/?#]*(\/[^?#]*)?(?:\?([^#]*))?/i.exec(url.trim());
  // A bare path ("/cam") is what some clients send as the request URI.
  const path = m ? (m[1] ?? '') : url.startsWith('/') ? url.split(/[?#]/)[0]! : undefined;
  if (path === undefined) return undefined;
  const query = m ? m[2] : /\?([^#]*)/.exec(url)?.[1];
  let name: string;
  try {
    name = decodeURIComponent(path.replace(/^\/+/, '').replace(/\/+$/, ''));
  } catch {
    return undefined;
  }
  if (!name) return undefined;
  return { name, request: parseMediaQuery(query ?? ''), internal: isInternalQuery(query ?? '') };
}

/**
 * go2rtc's media query: each `video`/`audio` key adds that kind, an empty value (or `copy`)
 * accepting every codec; without either key, everything (rtsp.default_query "video&audio").
 */
export function parseMediaQuery(query: string): MediaRequest {
  const params = new URLSearchParams(query);
  const req: MediaRequest = {};
  let named = false;
  for (const kind of ['video', 'audio'] as const) {
    for (const value of params.getAll(kind)) {
      named = true;
      const codecs = new Set(req[kind] ?? []);
      for (const raw of value.split(',')) {
        const n = raw.trim().toUpperCase().split('/')[0]!;
        if (n === '' || n === 'COPY' || n === 'ANY') for (const c of ALL_CODECS[kind]) codecs.add(c);
        // Names go2rtc accepts (h264, avc, hevc, mpeg4-generic, …), as camrelay's codecs.
        const c = formatByQueryName(n);
        if (c?.kind === kind) codecs.add(c.name);
      }
      req[kind] = [...codecs];
    }
  }
  return named ? req : { video: [...ALL_CODECS.video], audio: [...ALL_CODECS.audio] };
}

/** The track number a SETUP URL names (`…/trackID=1`), if any. */
export function trackIdOf(url: string): number | undefined {
  const m = /(?:^|[/?&;])trackID=(\d{1,3})\/?$/i.exec(url.trim());
  return m ? Number(m[1]) : undefined;
}
