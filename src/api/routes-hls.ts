// go2rtc's HLS (internal/hls/hls.go), always with fMP4 segments: GET /api/stream.m3u8?src= makes
// a session and answers a master playlist naming hls/playlist.m3u8?id=<id>; the media playlist
// names hls/init.mp4?id=<id> and hls/segment.m4s?id=<id>&n=<seq>. go2rtc answers MPEG-TS unless
// the query has `mp4` (or a codec filter); camrelay has no TS writer and serves fMP4 either way.
import { Router, type Request, type Response } from 'express';
import type { StreamRegistry } from '../core/registry.js';
import { parseMediaQuery } from '../rtsp/play-url.js';
import { parseMp4Query } from '../outputs/fmp4/codecs.js';
import { HLS_PLAYLIST_SEGMENTS, HLS_TARGET_SECONDS, type HlsSession } from '../outputs/hls/session.js';
import { HlsSessions } from '../outputs/hls/sessions.js';
import { masterPlaylist, mediaPlaylist } from '../outputs/hls/playlist.js';
import { LogThrottle } from '../core/log-throttle.js';
import { countRefusal } from '../core/refusals.js';
import { sendError } from './http-error.js';

const M3U8 = 'application/vnd.apple.mpegurl';
/** How long stream.m3u8 (and /api/ws's `hls`) waits for the stream's tracks (a camera that starts, then its muxer). */
export const HLS_ANSWER_WAIT_MS = 20_000;
/** How long the first media playlist and init wait for the first segment (a keyframe, then 1 s). */
const FIRST_SEGMENT_WAIT_MS = 10_000;
/** A segment asked for before it is finished is waited for this long (a GOP longer than this 404s). */
const SEGMENT_WAIT_MS = 6_000;

export interface HlsContext {
  registry: StreamRegistry;
  /** For tests; default HLS_SESSION_TIMEOUT_MS. */
  sessionTimeoutMs?: number;
  sessions?: HlsSessions;
}

const onGone = (res: Response) => (cb: () => void) => res.once('close', cb);

// A client (or an attacker) asking for sessions in a loop must not flood the log.
const refusedLog = new LogThrottle('hls: session refused (too many)');

export function hlsRoutes(ctx: HlsContext): Router {
  const table = ctx.sessions ?? new HlsSessions(undefined, undefined, ctx.sessionTimeoutMs);
  const r = Router();

  r.get('/api/stream.m3u8', async (req, res) => {
    const name = typeof req.query.src === 'string' ? req.query.src : '';
    const stream = ctx.registry.get(name);
    if (!stream) return sendError(res, 404, 'stream.m3u8: stream not found');
    const params = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const s = table.open(stream, parseMp4Query(params, parseMediaQuery), { remoteAddr: req.socket.remoteAddress, userAgent: req.headers['user-agent'] });
    if (!s) {
      countRefusal('hls_sessions');
      refusedLog.hit({ stream: name, refused: table.refused });
      return sendError(res, 503, `stream.m3u8: too many HLS sessions (${table.maxPerStream} per stream, ${table.max} in all)`);
    }
    let left = false;
    res.once('close', () => (left = !res.writableFinished));
    await s.wait(() => s.mime !== undefined, HLS_ANSWER_WAIT_MS, onGone(res));
    if (left) return s.close();
    if (s.closed || s.mime === undefined) {
      s.close(new Error('no answer from the stream in time'));
      return sendError(res, 500, `stream.m3u8: ${s.viewer.closed ? 'stream failed to start' : 'no answer from the stream in time'}`);
    }
    s.touch();
    res.status(200).type(M3U8).setHeader('Cache-Control', 'no-cache');
    res.end(masterPlaylist(s.id, s.mime));
  });

  const sessionOf = (req: Request, res: Response): HlsSession | undefined => {
    const s = typeof req.query.id === 'string' ? table.get(req.query.id) : undefined;
    if (!s) res.status(404).type('text/plain').end('404 page not found');
    else s.touch();
    return s;
  };

  r.get('/api/hls/playlist.m3u8', async (req, res) => {
    const s = sessionOf(req, res);
    if (!s) return;
    // Each answer waits for a segment newer than the last one listed: an empty playlist makes
    // players give up, and Chromium's native HLS fails (DEMUXER_ERROR_COULD_NOT_PARSE) when a
    // reload brings nothing new. A segment takes about HLS_TARGET_SECONDS, so this is short.
    const newest = () => s.segmenter.segments.at(-1)?.seq ?? -1;
    await s.wait(() => newest() > s.listed, s.listed < 0 ? FIRST_SEGMENT_WAIT_MS : SEGMENT_WAIT_MS, onGone(res));
    if (res.destroyed) return;
    if (s.closed) return void res.status(404).end();
    s.listed = Math.max(s.listed, newest());
    s.touch();
    res.status(200).type(M3U8).setHeader('Cache-Control', 'no-cache');
    res.end(mediaPlaylist(s.id, s.segmenter.segments, HLS_PLAYLIST_SEGMENTS, s.segmenter.maxDuration));
  });

  r.get('/api/hls/init.mp4', async (req, res) => {
    const s = sessionOf(req, res);
    if (!s) return;
    // No `v`: the current init (there is one once the muxer's first keyframe came).
    const version = () => (req.query.v === undefined ? s.segmenter.initVersion : Number(req.query.v));
    await s.wait(() => s.segmenter.init(version()) !== undefined, FIRST_SEGMENT_WAIT_MS, onGone(res));
    const init = s.segmenter.init(version());
    if (res.destroyed) return;
    if (!init) return void res.status(404).end();
    res.status(200).type('video/mp4').end(init);
  });

  r.get('/api/hls/segment.m4s', async (req, res) => {
    const s = sessionOf(req, res);
    if (!s) return;
    const n = Number(req.query.n);
    if (!Number.isInteger(n) || n < 0 || n > s.segmenter.nextSeq) return void res.status(404).end();
    // The segment being filled: answered as soon as it is finished (about HLS_TARGET_SECONDS).
    await s.wait(() => s.segment(n) !== undefined, Math.max(SEGMENT_WAIT_MS, HLS_TARGET_SECONDS * 3000), onGone(res));
    const seg = s.segment(n);
    if (res.destroyed) return;
    if (!seg) return void res.status(404).end();
    s.touch();
    res.status(200).type('video/iso.segment').setHeader('Content-Length', seg.bytes);
    for (const p of seg.parts) res.write(p);
    res.end();
  });
  return r;
}
