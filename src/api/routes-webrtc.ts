import express, { Router, type Request, type Response } from 'express';
import type { StreamRegistry } from '../core/registry.js';
import { SourceError, StartTimeoutError, errorMessage } from '../core/errors.js';
import { log } from '../core/log.js';
import { CloseReason } from '../core/close-reason.js';
import type { WebRtcSession } from '../outputs/webrtc/session.js';
import { OfferError } from '../outputs/webrtc/offer.js';
import { NoBackchannelError, TalkBusyError } from '../core/talk.js';
import type { WebRtcSettings } from '../outputs/webrtc/settings.js';
import type { WebRtcBackend } from '../outputs/webrtc/backend.js';
import type { SessionTable } from './sessions.js';
import { HttpError, sendError } from './http-error.js';
import { openWebRtc } from './webrtc-open.js';

export interface WebRtcContext {
  registry: StreamRegistry;
  /** Every session, HTTP and WebSocket alike; it holds the bounds (webrtc.max_sessions, max_connecting_per_client). */
  sessions: SessionTable<WebRtcSession>;
  settings: WebRtcSettings;
  /** The WebRTC library (webrtc.backend). */
  backend: WebRtcBackend;
}

/** HTTP status for a failure to open a viewer session: the viewer's fault, or the camera's. */
export function statusFor(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  if (e instanceof OfferError || e instanceof NoBackchannelError) return 400;
  if (e instanceof TalkBusyError) return 409;
  if (e instanceof StartTimeoutError) return 504;
  if (e instanceof SourceError) return 502;
  return 500;
}

export function webrtcRoutes(ctx: WebRtcContext): Router {
  const r = Router();
  const bodies = [express.json({ limit: '256kb' }), express.text({ type: 'application/sdp', limit: '256kb' })];

  r.post('/api/webrtc', ...bodies, async (req: Request, res: Response) => {
    const name = typeof req.query.src === 'string' ? req.query.src : '';
    const stream = ctx.registry.get(name);
    if (!stream) return sendError(res, 404, `stream not found: ${name}`);

    const isSdp = req.is('application/sdp') === 'application/sdp';
    let offer: unknown;
    if (isSdp) offer = req.body;
    else if (req.body && typeof req.body === 'object') {
      const b = req.body as { type?: unknown; sdp?: unknown };
      if (b.type !== 'offer') return sendError(res, 400, 'webrtc: body must be {"type":"offer","sdp":"…"}');
      offer = b.sdp;
    }
    if (typeof offer !== 'string' || offer.length === 0) {
      return sendError(res, 400, 'webrtc: missing SDP offer (send JSON {"type":"offer","sdp":…} or application/sdp)');
    }

    // A viewer who gives up while the camera starts must not keep it starting.
    const ac = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    try {
      const opened = await openWebRtc(ctx, {
        stream,
        sdp: offer,
        trickle: false,
        remoteAddr: req.socket.remoteAddress,
        userAgent: req.headers['user-agent'],
        signal: ac.signal,
      });
      if (!opened) return;
      const { session, answer } = opened;
      // Which kinds come through a transcode the stream started for this viewer (transcode: auto):
      // a header, because go2rtc's clients parse the body and know no field of ours.
      const transcoded = session.transcoded;
      if (transcoded.length > 0) res.setHeader('X-Camrelay-Transcode', transcoded.join(', '));
      if (isSdp) {
        res.status(201).location(`/api/webrtc?id=${session.id}`).type('application/sdp').send(answer);
      } else {
        res.json({ type: 'answer', sdp: answer });
      }
    } catch (e) {
      log.info({ stream: name, err: errorMessage(e) }, 'webrtc session not opened');
      sendError(res, statusFor(e), `webrtc: ${errorMessage(e)}`);
    }
  });

  r.delete('/api/webrtc', (req, res) => {
    const id = typeof req.query.id === 'string' ? req.query.id : '';
    const s = ctx.sessions.get(id);
    if (!s) return sendError(res, 404, `session not found: ${id}`);
    s.close(new CloseReason('client'));
    res.status(200).json({ closed: id });
  });
  return r;
}
