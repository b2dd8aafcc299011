// What a request handler of an RTSP server connection answers, and the bytes that answer is.
import { RtspHeaders, serializeResponse, STATUS_REASONS, type RtspRequest } from './message.js';

/** What a request handler answers; `end` makes it final (the connection closes after it). */
export interface Final {
  status: number;
  reason?: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer;
  end?: { why: string; error?: Error };
}
export type Handler = (req: RtspRequest) => Final | Promise<Final>;

/** A reason phrase may not break the status line. */
export function reasonPhrase(status: number, detail: string): string {
  return `${STATUS_REASONS[status] ?? 'Error'}: ${detail}`.replace(/[\r\n]+/g, ' ').slice(0, 300);
}

/**
 * The answer to `req`: its CSeq, our Server and the session (`session`, with its timeout in
 * seconds) before the handler's own headers. Throws when a header cannot be written safely (a line
 * break from somewhere): no answer is better than a forged one.
 */
export function replyBytes(req: RtspRequest, reply: Final, session: { id: string; timeoutMs: number } | undefined): Buffer {
  const headers = new RtspHeaders();
  const cseq = req.headers.get('cseq');
  if (cseq !== undefined) headers.set('CSeq', cseq);
  headers.set('Server', 'camrelay');
  if (session) headers.set('Session', `${session.id};timeout=${Math.ceil(session.timeoutMs / 1000)}`);
  for (const [k, v] of Object.entries(reply.headers ?? {})) {
    if (Array.isArray(v)) for (const one of v) headers.append(k, one);
    else headers.set(k, v);
  }
  if (reply.body?.length) headers.set('Content-Type', 'application/sdp');
  return serializeResponse({ status: reply.status, reason: reply.reason, headers, body: reply.body });
}

/** The 400 for input the reader refused, naming what was wrong; no CSeq: it may be the bad field. */
export function unparsableBytes(why: string): Buffer {
  return serializeResponse({ status: 400, reason: reasonPhrase(400, why), headers: new RtspHeaders({ Server: 'camrelay' }) });
}
