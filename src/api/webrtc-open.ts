// Opening a WebRTC session for a viewer, for both signalling paths (POST /api/webrtc and the
// WebSocket): what a WebRTC session needs from the request. The bounds, the `opening` state and
// the hand-over are the SessionTable's (SessionTable.open).
import type { Stream } from '../core/stream.js';
import { WebRtcSession } from '../outputs/webrtc/session.js';
import type { WebRtcSettings } from '../outputs/webrtc/settings.js';
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

/** SessionTable.open for a WebRTC offer: the session and its answer, or undefined when the viewer left first. */
export function openWebRtc(ctx: WebRtcContext, r: OpenRequest): Promise<{ session: WebRtcSession; answer: string } | undefined> {
  const meta = { trickle: r.trickle, remoteAddr: r.remoteAddr, userAgent: r.userAgent, signal: r.signal };
  return ctx.sessions.open({
    remoteAddr: r.remoteAddr,
    signal: r.signal,
    create: () => WebRtcSession.create(r.stream, r.sdp, r.settings ?? ctx.settings, meta, ctx.backend),
    setUp: (s) => s.answer(),
  });
}
