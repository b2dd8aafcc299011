// HLS viewer cycles as a player that stops: GET /api/stream.m3u8?src=demo (the master playlist),
// the media playlist it names, init.mp4 and one segment, then no more requests. camrelay ends a
// session HLS_SESSION_TIMEOUT_MS (5 s) after its last request, so the cycles run in concurrent
// batches (HLS_BATCH at once, within the 16 sessions a stream admits): a batch's time is about one
// session's (the camera's start, a segment, the timeout), and a batch ends when camrelay holds no
// HlsSession any more (read from /api/debug/objects, which does not name a session, so it does not
// keep one alive).
import { request } from '../../test/helpers/http.js';
import type { CamrelayProcess } from '../../test/helpers/camrelay-process.js';
import { waitFor } from '../../test/helpers/wait.js';
import { liveObjects } from './objects.js';

export const HLS_BATCH = 10;
/** src/outputs/hls/session.ts's HLS_SESSION_TIMEOUT_MS, which bench code does not import from src. */
export const HLS_TIMEOUT_MS = 5000;

export interface HlsCycleResult {
  /** The segment's length as read (as text: a rough size, enough to say it was not empty). */
  segmentLength: number;
}

/** One session: master, media playlist, init, one segment (each must be 200 and look like itself). */
export async function hlsCycle(app: CamrelayProcess, d: { mediaMs: number }): Promise<HlsCycleResult> {
  const base = `http://127.0.0.1:${app.port}/api`;
  const get = async (p: string, what: string) => {
    const r = await request(`${base}/${p}`, { timeoutMs: d.mediaMs });
    if (r.status !== 200) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 200)}`);
    return r;
  };
  const master = await get('stream.m3u8?src=demo', 'master playlist');
  const media = /^(hls\/playlist\.m3u8\?id=\w+)$/m.exec(master.text)?.[1];
  if (!media) throw new Error(`the master playlist names no media playlist: ${master.text}`);
  const playlist = await get(media, 'media playlist');
  const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist.text)?.[1];
  const segment = /^(segment\.m4s\?id=\w+&n=\d+)$/m.exec(playlist.text)?.[1];
  if (!init || !segment) throw new Error(`the media playlist names no init or segment: ${playlist.text}`);
  const i = await get(`hls/${init}`, 'init.mp4');
  if (!i.text.slice(4, 8).startsWith('ftyp')) throw new Error('init.mp4 does not start with ftyp');
  const s = await get(`hls/${segment}`, 'segment');
  if (s.text.length === 0) throw new Error('an empty segment');
  return { segmentLength: s.text.length };
}

/** Waits for camrelay to have ended every HLS session (a batch's end). */
export async function hlsSessionsEnded(app: CamrelayProcess, ms: number): Promise<void> {
  await waitFor('every HLS session ended', async () => ((await liveObjects(app))['HlsSession'] ?? 0) === 0, ms, 250);
}
