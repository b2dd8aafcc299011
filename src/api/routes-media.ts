import { Router, type Request, type Response } from 'express';
import type { StreamRegistry } from '../core/registry.js';
import { errorMessage } from '../core/errors.js';
import type { StopGrace } from '../process/child.js';
import { SnapshotPool, SnapshotsBusy } from '../outputs/snapshot-pool.js';
import { MJPEG_BOUNDARY, MultipartJpegSink } from '../outputs/mjpeg.js';
import { MjpegEncodersBusy, MjpegHub, type MjpegViewer } from '../outputs/mjpeg-hub.js';
import { SnapshotAborted } from '../outputs/snapshot.js';
import { HttpError, sendError } from './http-error.js';
import { statusFor } from './routes-webrtc.js';

export interface MediaContext {
  registry: StreamRegistry;
  ffmpegBin: string;
  grace: StopGrace;
  /** How long an idle stream may take to give a keyframe for a snapshot. */
  snapshotTimeout: number;
  /** api.max_snapshots: snapshot decoders alive (and decodes waiting for a keyframe), all streams and sizes. */
  maxSnapshots: number;
  /** api.snapshot_cache (ms). */
  snapshotCache: number;
  /**
   * The snapshot decoders, when the caller owns them (to close them at shutdown); made here when
   * not given, and then closed only with their streams.
   */
  snapshots?: SnapshotPool;
  /** The MJPEG encoders, shared with /api/ws's MJPEG (made here when not given). */
  mjpeg?: MjpegHub;
}

function size(req: Request, key: 'width' | 'height'): number | undefined {
  const v = req.query[key];
  if (v === undefined || v === '') return undefined;
  const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 16 && n <= 7680)) throw new HttpError(400, `${key} must be a whole number from 16 to 7680`);
  return n;
}

/**
 * The 503 of a full decoder pool, written straight to Node's response: a burst refuses 100+ at
 * once, and express's json() (ETag hash, charset negotiation) was a third of each refusal's cost
 * on the event loop. Same body and headers as sendError's, plus Retry-After.
 */
function refuseBusy(res: Response, e: SnapshotsBusy): void {
  if (res.headersSent) return;
  const body = JSON.stringify({ error: `frame.jpeg: ${e.message}` });
  res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Retry-After': '1' }).end(body);
}

/** Snapshots (go2rtc's frame.jpeg) and multipart MJPEG (stream.mjpeg). */
export function mediaRoutes(ctx: MediaContext): Router {
  const r = Router();
  const snapshots = ctx.snapshots ?? new SnapshotPool({
    ffmpegBin: ctx.ffmpegBin,
    grace: ctx.grace,
    maxDecoders: ctx.maxSnapshots,
    cacheMs: ctx.snapshotCache,
    timeoutMs: ctx.snapshotTimeout,
  });
  const streamOf = (req: Request) => {
    const name = typeof req.query.src === 'string' ? req.query.src : '';
    const s = ctx.registry.get(name);
    if (!s) throw new HttpError(404, `stream not found: ${name}`);
    return s;
  };

  r.get('/api/frame.jpeg', async (req, res) => {
    try {
      const stream = streamOf(req);
      const width = size(req, 'width');
      const height = size(req, 'height');
      // The request's end (the client hung up) releases its share of the decode.
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      let jpeg: Buffer;
      try {
        jpeg = await snapshots.jpeg(stream, width, height, gone.signal);
      } finally {
        await snapshots.turn();
      }
      // No ETag: each would hash the whole JPEG again, for a picture that is no-cache anyway.
      res.set('Cache-Control', 'no-cache').type('image/jpeg').end(jpeg);
    } catch (e) {
      if (e instanceof SnapshotsBusy) return refuseBusy(res, e);
      if (e instanceof SnapshotAborted) return; // nobody to answer
      sendError(res, e instanceof HttpError ? e.status : statusFor(e), `frame.jpeg: ${errorMessage(e)}`);
    }
  });

  const mjpeg = ctx.mjpeg ?? new MjpegHub({ ffmpegBin: ctx.ffmpegBin, grace: ctx.grace });
  r.get('/api/stream.mjpeg', async (req, res) => {
    let viewer: MjpegViewer | undefined;
    try {
      const stream = streamOf(req);
      const v = mjpeg.viewer(stream, { width: size(req, 'width'), height: size(req, 'height') }, new MultipartJpegSink(res), {
        remoteAddr: req.socket.remoteAddress,
        userAgent: req.headers['user-agent'],
        via: 'http',
      });
      viewer = v;
      res.once('close', () => v.close());
      // Headers go out with the first JPEG, so a failed start can still answer an error.
      res.setHeader('Content-Type', `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`);
      res.setHeader('Cache-Control', 'no-cache');
      await v.start();
    } catch (e) {
      if (e instanceof MjpegEncodersBusy && !res.headersSent) res.set('Retry-After', '1');
      const status = e instanceof HttpError ? e.status : e instanceof MjpegEncodersBusy ? 503 : statusFor(e);
      if (!res.headersSent) sendError(res, status, `stream.mjpeg: ${errorMessage(e)}`);
      viewer?.close();
    }
  });
  return r;
}
