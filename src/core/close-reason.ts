// Why a viewer session ended, as a code that metrics and tests can rely on, and a human message
// for logs and `close_reason` in the API. The messages are the texts camrelay has always logged;
// some codes take a detail (the queue size, the peer's state) in place of the plain message.
import { StreamClosedError } from './errors.js';

export const CLOSE_MESSAGES = {
  /** The viewer said so: `DELETE /api/webrtc?id=` (also the web page's on pagehide). */
  client: 'closed by client',
  /** No ICE + DTLS within webrtc.timeouts.connect of the answer. */
  connect_timeout: 'connect timeout',
  /** Nothing heard from the viewer for webrtc.timeouts.disconnect. */
  disconnect_timeout: 'disconnect timeout',
  /** The peer connection reported `closed`: the viewer's side ended it. */
  peer_closed: 'connection closed',
  /** The peer connection reported `disconnected`. */
  peer_disconnected: 'connection disconnected',
  /** The peer connection reported `failed` (ICE or DTLS). */
  peer_failed: 'connection failed',
  /** Too much queued for a viewer that does not read fast enough. */
  slow_consumer: 'viewer cannot keep up',
  /** A new offer on the same signalling WebSocket: the same viewer starting over. */
  replaced: 'replaced by a new offer on the same WebSocket',
  /** The viewer left (request or WebSocket closed) before it had its answer. */
  viewer_left: 'viewer left before the answer',
  /** The stream closed (deleted, or camrelay stopping) while the viewer was attached. */
  stream_closed: 'stream closed',
  /** Camrelay is shutting down. */
  shutdown: 'server shutdown',
  /** Anything else: a failed open, an error thrown while sending. The message is the error's. */
  error: 'error',
} as const;

export type CloseCode = keyof typeof CLOSE_MESSAGES;

export const CLOSE_CODES = Object.keys(CLOSE_MESSAGES) as CloseCode[];

/** A close reason with its code; `message` is the human text (the code's, or a more precise one). */
export class CloseReason extends Error {
  constructor(
    readonly code: CloseCode,
    message: string = CLOSE_MESSAGES[code],
  ) {
    super(message);
    this.name = 'CloseReason';
  }
}

/** The code of whatever a close was given: a CloseReason's own, `stream_closed`, else `error`. */
export function closeCodeOf(reason: unknown): CloseCode {
  if (reason instanceof CloseReason) return reason.code;
  if (reason instanceof StreamClosedError) return 'stream_closed';
  return 'error';
}
