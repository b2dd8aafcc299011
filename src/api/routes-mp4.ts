// go2rtc's MP4 over HTTP (internal/mp4/mp4.go): GET /api/stream.mp4 (fragmented MP4 until the
// client goes away, or for `duration` seconds) and GET /api/frame.mp4 (one keyframe as a short
// MP4). Both are viewers of the stream's shared fMP4 muxer (outputs/fmp4).
import { Router, type Request, type Response } from 'express';
import type { StreamRegistry } from '../core/registry.js';
import type { Stream } from '../core/stream.js';
import { errorMessage } from '../core/errors.js';
import { CloseReason } from '../core/close-reason.js';
import { parseMediaQuery } from '../rtsp/play-url.js';
import { parseMp4Query } from '../outputs/fmp4/codecs.js';
import { watchFmp4 } from '../outputs/fmp4/muxers.js';
import { Fmp4Viewer, type Fmp4Sink } from '../outputs/fmp4/viewer.js';
import { sendError } from './http-error.js';

export interface Mp4Context {
  registry: StreamRegistry;
  /** How long frame.mp4 waits for a keyframe once the stream runs (ms). */
  keyframeTimeout?: number;
}

/** A stream.mp4 response as a viewer's sink: headers on start, then the body; a flush per write. */
function responseSink(res: Response, filename: string | undefined): Fmp4Sink {
  return {
    start: (mime) => {
      res.status(200);
      res.setHeader('Content-Type', mime);
      res.setHeader('Cache-Control', 'no-cache');
      if (filename) res.setHeader('Content-Disposition', `attachment; filename="${filename.replace(/["\\\r\n]/g, '_')}"`);
      res.flushHeaders();
    },
    write: (parts) => {
      for (const p of parts) res.write(p);
    },
    buffered: () => res.writableLength,
  };
}

function query(req: Request): URLSearchParams {
  const raw = req.originalUrl.split('?')[1] ?? '';
  return new URLSearchParams(raw);
}

export function mp4Routes(ctx: Mp4Context): Router {
  const r = Router();
  const streamOf = (req: Request, res: Response, route: string): Stream | undefined => {
    const name = typeof req.query.src === 'string' ? req.query.src : '';
    const s = ctx.registry.get(name);
    if (!s) sendError(res, 404, `${route}: stream not found`);
    return s;
  };

  r.all('/api/stream.mp4', (req, res) => {
    const params = query(req);
    const ua = req.headers['user-agent'] ?? '';
    // go2rtc's quirk: Safari cannot play a progressive fMP4, so it is sent to HLS (fMP4 segments).
    if (ua.includes(' Safari/') && !ua.includes(' Chrome/') && !params.has('duration')) {
      const raw = req.originalUrl.split('?')[1] ?? '';
      res.redirect(301, `stream.m3u8?${raw}${params.has('mp4') ? '' : '&mp4'}`);
      return;
    }
    const stream = streamOf(req, res, 'stream.mp4');
    if (!stream) return;
    const seconds = Number(params.get('duration') ?? '');
    const viewer = new Fmp4Viewer('mp4', responseSink(res, params.get('filename') ?? undefined), { remoteAddr: req.socket.remoteAddress, userAgent: ua });
    let timer: NodeJS.Timeout | undefined;
    if (seconds > 0 && Number.isFinite(seconds)) timer = setTimeout(() => viewer.close(), Math.min(seconds, 86_400) * 1000);
    res.once('close', () => viewer.close(new CloseReason('client')));
    viewer.once('close', (reason?: Error) => {
      clearTimeout(timer);
      if (res.destroyed) return;
      if (!viewer.answered) sendError(res, 500, `stream.mp4: ${reason?.message ?? 'stream closed'}`);
      else res.end();
    });
    watchFmp4(stream, parseMp4Query(params, parseMediaQuery), viewer);
  });

  r.all('/api/frame.mp4', (req, res) => {
    const ua = req.headers['user-agent'] ?? '';
    // go2rtc's quirk: Chrome asks first without Range and then with it; the first gets nothing.
    if (ua.includes(' Chrome/') && req.headers.range === undefined) {
      res.status(200).type('video/mp4').end();
      return;
    }
    const stream = streamOf(req, res, 'frame.mp4');
    if (!stream) return;
    const filename = query(req).get('filename') ?? undefined;
    let mime = 'video/mp4';
    const parts: Buffer[] = [];
    let writes = 0;
    const viewer = new Fmp4Viewer('mp4', {
      start: (m) => (mime = m),
      write: (p) => {
        parts.push(...p);
        // The init segment, then the keyframe's moof+mdat: that is the whole file.
        if (++writes === 2) viewer.close(new CloseReason('client', 'keyframe taken'));
      },
      buffered: () => 0,
    }, { remoteAddr: req.socket.remoteAddress, userAgent: ua });
    const timer = setTimeout(() => viewer.close(new Error('no keyframe in time')), ctx.keyframeTimeout ?? 10_000);
    res.once('close', () => viewer.close(new CloseReason('client')));
    viewer.once('close', (reason?: Error) => {
      clearTimeout(timer);
      if (res.destroyed) return;
      if (writes < 2) return sendError(res, 500, `frame.mp4: ${errorMessage(reason ?? new Error('stream closed'))}`);
      const body = Buffer.concat(parts);
      // Safari shows the frame only with a Content-Length (go2rtc's comment).
      res.status(200).setHeader('Content-Type', mime);
      res.setHeader('Content-Length', body.length);
      if (filename) res.setHeader('Content-Disposition', `attachment; filename="${filename.replace(/["\\\r\n]/g, '_')}"`);
      res.end(body);
    });
    watchFmp4(stream, { video: ['H264', 'H265'] }, viewer);
  });
  return r;
}
