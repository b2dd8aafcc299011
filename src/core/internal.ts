import { randomBytes } from 'node:crypto';

// Our own ffmpeg transcodes read streams back from our RTSP server. They mark their URL with a
// secret of this process so the server can tell them from players: they must not keep a stream
// alive nor start it (DESIGN.md loop guard). A random per-process value, so nobody outside can
// pass for one.
const KEY = 'camrelay_internal';
const TOKEN = randomBytes(12).toString('hex');

/** Adds the marker to a URL that already has a query string or none. */
export function markInternal(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${KEY}=${TOKEN}`;
}

export function isInternalQuery(query: string): boolean {
  return new URLSearchParams(query).get(KEY) === TOKEN;
}
