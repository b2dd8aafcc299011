import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { errorMessage } from '../core/errors.js';
import { log as rootLog, maskCredentials, type Logger } from '../core/log.js';
import { Owned } from '../core/owned.js';
import { RtspProtocolError } from './errors.js';
import { DEFAULT_READER_LIMITS, RtspHeaders, RtspMessageReader, serializeResponse, type RtspItem, type RtspReaderLimits, type RtspRequest } from './message.js';
import { PublishSession, type Reply } from './publish-session.js';
import type { PublishSlot } from './publish-slot.js';

/** What a connection needs from its server. */
export interface ConnectionHost {
  /** The slot for a publish path if it is known and unused; it is then bound to `conn`. */
  claimPublishPath(path: string, conn: RtspConnection): PublishSlot | undefined;
}

export interface ConnectionOptions {
  /** Close a connection that sends nothing for this long (ms). */
  idleTimeoutMs: number;
  /** Advertised in the Session header (s); clients send keep-alives within it. */
  sessionTimeoutSec: number;
  readerLimits: RtspReaderLimits;
}

export const DEFAULT_CONNECTION_OPTIONS: ConnectionOptions = {
  idleTimeoutMs: 70_000,
  sessionTimeoutSec: 60,
  readerLimits: DEFAULT_READER_LIMITS,
};

/** A reply after which the connection ends: `why` reaches the slot, `error` is the close reason. */
type Final = Reply & { end?: { why: string; error?: Error } };
type Handler = (req: RtspRequest) => Final;

let nextId = 1;

/**
 * One TCP connection to the RTSP server. Reads requests and interleaved frames, answers each
 * request through a per-method handler, and holds the session role the client took (publisher
 * now; player later). Owned by the RtspServer. Malformed input closes only this connection.
 */
export class RtspConnection extends Owned {
  readonly id = nextId++;
  readonly remote: string;
  #socket: Socket;
  #reader: RtspMessageReader;
  #log: Logger;
  #sessionId: string | undefined;
  #publish: PublishSession | undefined;
  /** A final response is being flushed; ignore further input. */
  #closing = false;
  #socketGone: Promise<void>;
  // A Map, not an object literal: a method named 'constructor' must not find Object's.
  #handlers = new Map<string, Handler>([
    ['OPTIONS', () => ({ status: 200, headers: { Public: 'OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER' } })],
    ['ANNOUNCE', (req) => this.#announce(req)],
    ['SETUP', (req) => this.#setup(req)],
    ['RECORD', () => (this.#publish ? this.#publish.record() : { status: 455 })],
    ['TEARDOWN', () => this.#teardown()],
    // Keep-alives.
    ['GET_PARAMETER', () => ({ status: 200 })],
    ['SET_PARAMETER', () => ({ status: 200 })],
  ]);

  constructor(
    socket: Socket,
    private readonly host: ConnectionHost,
    private readonly opts: ConnectionOptions = DEFAULT_CONNECTION_OPTIONS,
  ) {
    super('RtspConnection');
    this.#socket = socket;
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.#reader = new RtspMessageReader(opts.readerLimits);
    this.#log = rootLog.child({ component: 'rtsp', conn: this.id, remote: this.remote });
    this.#socketGone = new Promise((resolve) => {
      if (socket.closed) resolve();
      else socket.once('close', () => resolve());
    });
    socket.setNoDelay(true);
    socket.setTimeout(opts.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('timeout', () => this.#fail(new RtspProtocolError('IdleTimeout', `nothing received for ${opts.idleTimeoutMs} ms`)));
    socket.on('error', (e) => {
      this.#log.debug({ err: e.message }, 'socket error');
      this.close(e);
    });
    socket.on('close', () => this.close());
    this.#log.debug('connection opened');
  }

  /** Publish path this connection publishes to, if it is a publisher. */
  get publishPath(): string | undefined {
    return this.#publish?.slot.path;
  }

  #onData(chunk: Buffer): void {
    if (this.closed || this.#closing) return;
    let items: RtspItem[];
    try {
      items = this.#reader.push(chunk);
    } catch (e) {
      this.#fail(e);
      return;
    }
    for (const item of items) {
      if (this.closed || this.#closing) return;
      try {
        this.#handle(item);
      } catch (e) {
        this.#fail(new RtspProtocolError('HandlerFailed', `${item.type} handler threw: ${errorMessage(e)}`));
        return;
      }
    }
  }

  #handle(item: RtspItem): void {
    if (item.type === 'interleaved') {
      if (!this.#publish?.interleaved(item.channel, item.payload)) {
        this.#fail(new RtspProtocolError('ChannelNotSetUp', `interleaved data on channel ${item.channel}`));
      }
      return;
    }
    if (item.type === 'response') {
      // The server sends no requests yet, so no response is expected.
      this.#log.debug({ status: item.status }, 'ignoring an RTSP response from the client');
      return;
    }
    this.#request(item);
  }

  #request(req: RtspRequest): void {
    this.#log.debug({ method: req.method, url: maskCredentials(req.url) }, 'request');
    const cseq = req.headers.get('cseq');
    if (cseq === undefined) return this.#send(req, { status: 400 });
    if (req.version !== '1.0') return this.#send(req, { status: 505 });
    const session = req.headers.get('session')?.split(';')[0]?.trim();
    if (session !== undefined && this.#sessionId !== undefined && session !== this.#sessionId) {
      return this.#send(req, { status: 454 });
    }
    const handler = this.#handlers.get(req.method);
    const reply = handler ? handler(req) : { status: 501 };
    this.#send(req, reply);
  }

  #send(req: RtspRequest, reply: Final): void {
    const headers = new RtspHeaders();
    const cseq = req.headers.get('cseq');
    if (cseq !== undefined) headers.set('CSeq', cseq);
    headers.set('Server', 'camrelay');
    if (this.#sessionId) headers.set('Session', `${this.#sessionId};timeout=${this.opts.sessionTimeoutSec}`);
    for (const [k, v] of Object.entries(reply.headers ?? {})) headers.set(k, v);
    if (reply.body?.length) headers.set('Content-Type', 'application/sdp');
    const bytes = serializeResponse({ status: reply.status, headers, body: reply.body });
    if (reply.status >= 400) this.#log.info({ method: req.method, url: maskCredentials(req.url), status: reply.status }, 'request refused');
    if (!reply.end) {
      this.#socket.write(bytes);
      return;
    }
    // Let the final answer reach the client before the socket goes; input after it is ignored.
    const { why, error } = reply.end;
    this.#closing = true;
    this.#publishEnded(why);
    this.#socket.write(bytes, () => this.close(error));
  }

  #announce(req: RtspRequest): Final {
    if (this.#publish) return { status: 455 };
    let path: string;
    try {
      path = new URL(req.url).pathname.replace(/\/+$/, '');
    } catch {
      return { status: 400 };
    }
    const slot = this.host.claimPublishPath(path, this);
    if (!slot) {
      const err = new RtspProtocolError('UnknownPath', `ANNOUNCE to unknown or already used path ${path}`);
      this.#log.warn({ err: err.message, errName: err.name }, 'publish refused');
      return { status: 404, end: { why: err.message, error: err } };
    }
    const plog = this.#log.child({ publish: slot.label });
    const result = PublishSession.announce(req, slot, this, plog);
    if (!(result instanceof PublishSession)) {
      plog.warn({ why: result.why }, 'ANNOUNCE refused');
      slot.publisherGone(this, result.why, result.permanent);
      return { status: result.status, end: { why: result.why, error: new RtspProtocolError('AnnounceRefused', result.why) } };
    }
    this.#publish = result;
    plog.info({ tracks: result.tracks.length }, 'publisher announced');
    return { status: 200 };
  }

  #setup(req: RtspRequest): Reply {
    // Only publishing exists so far; a SETUP without ANNOUNCE would be a player's (not yet served).
    if (!this.#publish) return { status: 455 };
    const reply = this.#publish.setup(req);
    if (reply.status === 200) this.#sessionId ??= randomBytes(8).toString('hex');
    return reply;
  }

  #teardown(): Final {
    return { status: 200, end: { why: 'TEARDOWN' } };
  }

  #publishEnded(why: string): void {
    const p = this.#publish;
    if (!p) return;
    this.#publish = undefined;
    this.#log.info({ publish: p.slot.label, why }, 'publisher disconnected');
    p.slot.publisherGone(this, why);
  }

  #fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.#log.warn({ err: err.message, errName: err.name }, 'closing connection');
    this.close(err);
  }

  protected onClose(reason?: Error): Promise<void> {
    this.#publishEnded(reason ? reason.message : 'connection closed');
    this.#socket.destroy();
    this.#log.debug({ reason: reason?.message }, 'connection closed');
    return this.#socketGone;
  }
}
