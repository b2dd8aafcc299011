// Opening a WebRTC session for a viewer, for both signalling paths (POST /api/webrtc and the
// WebSocket): the bounds (webrtc.max_sessions, webrtc.max_connecting_per_client), the place held
// in the session table while the answer is made, and the hand-over to the table.
import type { Stream } from '../core/stream.js';
import { WebRtcSession } from '../outputs/webrtc/session.js';
import type { WebRtcSettings } from '../outputs/webrtc/settings.js';
import { HttpError } from './http-error.js';
import type { WebRtcContext } from './routes-webrtc.js';

export interface OpenRequest {
  stream: Stream;
  sdp: string;
  /** The settings for this viewer (the WebSocket's offer may name its own ICE servers). */
  settings?: WebRtcSettings;
  trickle: boolean;
  remoteAddr: string | undefined;
  userAgent: string | undefined;
  /** Aborted when the viewer leaves before the answer. */
  signal: AbortSignal;
}

/**
 * Answers an offer: the session (in ctx.sessions) and its answer, or undefined when the viewer
 * left before the answer (the session is closed). Rejects with HttpError(503) at a bound, with
 * the signal's reason when the viewer left while waiting for a place, and with the session's
 * error otherwise.
 */
export async function openWebRtc(ctx: WebRtcContext, r: OpenRequest): Promise<{ session: WebRtcSession; answer: string } | undefined> {
  // May wait for a place (ConnectingTable): before the session limit is looked at.
  const connecting = await ctx.connecting?.acquire(r.remoteAddr, r.signal);
  let handedOver = false;
  try {
    const max = ctx.maxSessions;
    if (max !== undefined && ctx.sessions.load >= max) {
      ctx.onRefused?.();
      throw new HttpError(503, `too many sessions (max ${max})`);
    }
    const release = ctx.sessions.opening();
    try {
      const { session, answer } = await WebRtcSession.open(r.stream, r.sdp, r.settings ?? ctx.settings, {
        trickle: r.trickle,
        remoteAddr: r.remoteAddr,
        userAgent: r.userAgent,
        signal: r.signal,
      }, ctx.backend);
      if (r.signal.aborted) {
        session.close(new Error('viewer left before the answer'));
        return undefined;
      }
      ctx.sessions.add(session);
      if (connecting) {
        ctx.connecting!.follow(session, connecting);
        handedOver = true;
      }
      return { session, answer };
    } finally {
      release();
    }
  } finally {
    if (!handedOver) connecting?.();
  }
}
