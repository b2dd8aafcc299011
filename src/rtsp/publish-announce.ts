// A publisher's ANNOUNCE on an RTSP server connection: which path it may publish into (a one-time
// path of our own ffmpeg, or /<stream> for an external publisher the rules allow), and the
// PublishSession it becomes. Every refusal is final: the connection closes after the answer.
import type { Logger } from '../core/log.js';
import { RtspProtocolError } from './errors.js';
import type { RtspRequest } from './message.js';
import { PUBLISH_PREFIX, pathOf, type ConnectionHost } from './connection-host.js';
import { PublishSession } from './publish-session.js';
import { reasonPhrase, type Final } from './server-reply.js';
import type { RtspServerConnection } from './server-connection.js';

export interface AnnounceOutcome {
  reply: Final;
  /** The publisher's session, when the ANNOUNCE was accepted. */
  session?: PublishSession;
  /** It claimed a one-time path: one of our own ffmpeg children, accepted or not. */
  internal: boolean;
}

export function announcePublisher(req: RtspRequest, host: ConnectionHost, conn: RtspServerConnection, log: Logger): AnnounceOutcome {
  const path = pathOf(req.url)?.replace(/\/+$/, '');
  if (path === undefined) return { reply: { status: 400 }, internal: false };
  const slot = host.claimPublishPath(path, conn);
  if (slot && !('claim' in slot)) {
    const err = new RtspProtocolError('PublishForbidden', `ANNOUNCE to ${path} refused: ${slot.reason}`);
    log.warn({ err: err.message, errName: err.name }, 'publish refused');
    host.refused('publish_forbidden');
    return { reply: { status: 403, reason: reasonPhrase(403, slot.reason), end: { why: err.message, error: err } }, internal: false };
  }
  if (!slot) {
    const err = new RtspProtocolError('UnknownPath', `ANNOUNCE to unknown or already used path ${path}`);
    log.warn({ err: err.message, errName: err.name }, 'publish refused');
    return { reply: { status: 404, end: { why: err.message, error: err } }, internal: false };
  }
  const internal = path.startsWith(PUBLISH_PREFIX);
  const plog = log.child({ publish: slot.label });
  const result = PublishSession.announce(req, slot, conn, plog);
  if (!(result instanceof PublishSession)) {
    plog.warn({ why: result.why }, 'ANNOUNCE refused');
    slot.publisherGone(conn, result.why, result.permanent);
    return { reply: { status: result.status, end: { why: result.why, error: new RtspProtocolError('AnnounceRefused', result.why) } }, internal };
  }
  plog.info({ tracks: result.tracks.length }, 'publisher announced');
  return { reply: { status: 200 }, session: result, internal };
}
