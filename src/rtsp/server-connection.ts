import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { errorMessage } from '../core/errors.js';
import { log as rootLog, maskCredentials, type Logger } from '../core/log.js';
import { Owned } from '../core/owned.js';
import type { AuthResult } from './auth.js';
import { isInternalQuery } from '../core/internal.js';
import { RtspProtocolError } from './errors.js';
import type { RtspItem, RtspRequest } from './message.js';
import { PlayError, socketSink, type RtspPlayer } from './player.js';
import { parsePlayUrl } from './play-url.js';
import type { PublishSession } from './publish-session.js';
import { announcePublisher } from './publish-announce.js';
import { parseTransport } from './transport.js';
import { DEFAULT_CONNECTION_OPTIONS, PUBLISH_PREFIX, pathOf, plainAddress, type ConnectionHost, type ConnectionOptions } from './connection-host.js';
import { reasonPhrase, replyBytes, unparsableBytes, type Final, type Handler } from './server-reply.js';
import { RequestInput } from './request-input.js';

/** How long a publisher's connection stays after its TEARDOWN for requests still in flight. */
const PUBLISHER_LINGER_MS = 500;

let nextId = 1;

/**
 * One TCP connection to the RTSP server. Reads requests and interleaved frames, answers each
 * request through a per-method handler, one at a time and in order, and holds the role the client
 * took: a publisher (ANNOUNCE/RECORD into a one-time path) or a player (DESCRIBE/SETUP/PLAY of a
 * stream). Owned by the RtspServer; owns the player it made. Malformed input closes only this
 * connection.
 */
export class RtspServerConnection extends Owned {
  readonly id = nextId++;
  readonly remote: string;
  #socket: Socket;
  #input: RequestInput;
  #log: Logger;
  #sessionId: string | undefined;
  #publish: PublishSession | undefined;
  /** Presented our internal marker: one of our own ffmpeg transcodes. */
  #internalReader = false;
  #player: RtspPlayer | undefined;
  #onPlayerClose = (err?: Error) => this.close(err ?? new Error('player session closed'));
  /** A player's session ended with TEARDOWN; the connection stays until the client closes it. */
  #tornDown = false;
  /** A final response is being flushed; ignore further input. */
  #closing = false;
  #socketGone: Promise<void>;
  /** Publishes into a one-time path or reads with our marker: one of our own ffmpeg children. */
  #internal = false;
  /** Accepted beyond rtsp.max_connections from loopback: must show it is one of ours. */
  #probation: boolean;
  #lastInputAt = performance.now();
  #probationTimer: NodeJS.Timeout | undefined;
  /** After a publisher's TEARDOWN: the connection closes when the client has had its last word. */
  #lingerTimer: NodeJS.Timeout | undefined;
  // A Map, not an object literal: a method named 'constructor' must not find Object's.
  #handlers = new Map<string, Handler>([
    ['OPTIONS', () => ({ status: 200, headers: { Public: 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, ANNOUNCE, RECORD, GET_PARAMETER, SET_PARAMETER' } })],
    ['DESCRIBE', (req) => this.#describe(req)],
    ['ANNOUNCE', (req) => this.#announce(req)],
    ['SETUP', (req) => this.#setup(req)],
    ['PLAY', () => this.#player?.play() ?? { status: 455 }],
    // After a TEARDOWN, a PAUSE is answered as done: GStreamer may send its PAUSE after the
    // TEARDOWN it sends from another thread, and takes any error as fatal. A publisher may pause
    // its recording (RFC 2326 10.6; GStreamer's rtspclientsink does before its TEARDOWN): frames
    // just stop, and the stream is fed again if RECORD follows.
    ['PAUSE', () => this.#player?.pause() ?? { status: this.#tornDown || this.#publish ? 200 : 455 }],
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
    accept: { probation?: boolean } = {},
  ) {
    // The kind keeps its old name: /api/debug/objects shows it, and tests count it.
    super('RtspConnection');
    this.#probation = accept.probation ?? false;
    this.#socket = socket;
    this.remote = `${plainAddress(socket.remoteAddress) || '?'}:${socket.remotePort ?? '?'}`;
    this.#input = new RequestInput(opts.readerLimits, opts.headerTimeoutMs, {
      isClosed: () => this.closed,
      isClosing: () => this.#closing,
      handle: (item) => this.#handle(item),
      unparsable: (e) => this.#unparsable(e),
      fail: (e) => this.#fail(e),
      headerTimedOut: () => this.host.refused('header_timeout'),
    });
    this.#log = rootLog.child({ component: 'rtsp', conn: this.id, remote: this.remote });
    this.#socketGone = new Promise((resolve) => {
      if (socket.closed) resolve();
      else socket.once('close', () => resolve());
    });
    socket.setNoDelay(true);
    socket.setTimeout(opts.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('timeout', () => this.#fail(new RtspProtocolError('IdleTimeout', `nothing received for ${opts.idleTimeoutMs} ms`)));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.#log.debug({ err: e.message }, 'socket error');
      // A reset or a write into a half-closed socket is the client leaving, whatever the wording.
      const gone = e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED';
      this.close(gone ? new Error(`connection closed by the client (${e.code})`) : e);
    });
    socket.on('close', () => this.close(new Error('connection closed by the client')));
    if (this.#probation) {
      // On probation a connection has header_timeout to show it is one of ours, talking or not.
      this.#probationTimer = setTimeout(() => {
        if (this.closed || !this.onProbation) return;
        this.host.refused('max_connections');
        this.#fail(new RtspProtocolError('TooManyConnections', `rtsp.max_connections reached and nothing showed this loopback connection is one of ours within ${opts.headerTimeoutMs} ms`));
      }, opts.headerTimeoutMs);
    }
    this.#log.debug('connection opened');
  }

  /** One of our own ffmpeg children: not counted by rtsp.max_connections. */
  get internal(): boolean {
    return this.#internal;
  }

  get onProbation(): boolean {
    return this.#probation && !this.#internal;
  }

  /** Neither plays nor publishes, nor is a request of it being answered. */
  get sessionless(): boolean {
    return !this.#player && !this.#publish && !this.#input.busy && !this.#closing;
  }

  /** performance.now() of the last bytes received (or of the accept). */
  get lastInputAt(): number {
    return this.#lastInputAt;
  }

  /** Publish path this connection publishes to, if it is a publisher. */
  get publishPath(): string | undefined {
    return this.#publish?.slot.path;
  }

  #onData(chunk: Buffer): void {
    if (this.closed || this.#closing) return;
    this.#lastInputAt = performance.now();
    this.#input.push(chunk);
  }

  #handle(item: RtspItem): void {
    if (item.type === 'interleaved') {
      if (this.#publish) {
        if (!this.#publish.interleaved(item.channel, item.payload)) this.#fail(new RtspProtocolError('ChannelNotSetUp', `interleaved data on channel ${item.channel}`));
        return;
      }
      // A player's RTCP (receiver reports): proof of life. Other channels are ignored, not fatal.
      // After a TEARDOWN, RTCP already on its way is no fault of the client's either.
      if (this.#player || this.#tornDown) {
        this.#player?.interleaved(item.channel);
        return;
      }
      this.#fail(new RtspProtocolError('ChannelNotSetUp', `interleaved data on channel ${item.channel}`));
      return;
    }
    if (item.type === 'response') {
      // The server sends no requests, so no response is expected.
      this.#log.debug({ status: item.status }, 'ignoring an RTSP response from the client');
      return;
    }
    this.#request(item);
  }

  #request(req: RtspRequest): void {
    this.#log.debug({ method: req.method, url: maskCredentials(req.url) }, 'request');
    this.#player?.touch();
    // Our own transcodes carry this process's secret: they are neither counted nor asked for the user's password.
    if (!this.#internal && isInternalQuery(/\?([^#]*)/.exec(req.url)?.[1] ?? '')) {
      this.#internalReader = true;
      this.#internal = true;
    }
    if (this.onProbation && !this.#mayPassCap(req)) {
      this.host.refused('max_connections');
      const err = new RtspProtocolError('TooManyConnections', `rtsp.max_connections reached; ${req.method} from ${this.remote} refused`);
      return this.#send(req, { status: 503, reason: reasonPhrase(503, 'too many connections'), end: { why: err.message, error: err } });
    }
    const cseq = req.headers.get('cseq');
    if (cseq === undefined) return this.#send(req, { status: 400 });
    if (req.version !== '1.0') return this.#send(req, { status: 505 });
    const session = req.headers.get('session')?.split(';')[0]?.trim();
    if (session !== undefined && this.#sessionId !== undefined && session !== this.#sessionId) {
      return this.#send(req, { status: 454 });
    }
    const auth = this.#authorized(req);
    if (!auth.ok) {
      this.#log.debug({ method: req.method, why: auth.why, stale: auth.stale }, 'not authorized');
      return this.#send(req, { status: 401, headers: { 'WWW-Authenticate': this.host.auth!.challenges(this.#authOwner, auth.stale) } });
    }
    const handler = this.#handlers.get(req.method);
    const reply = handler ? handler(req) : { status: 501 };
    if (!(reply instanceof Promise)) return this.#send(req, reply);
    this.#input.hold();
    reply
      .catch((e: unknown): Final => {
        this.#log.warn({ method: req.method, err: errorMessage(e) }, 'request handler failed');
        return { status: 500 };
      })
      .then((r) => {
        this.#input.release();
        if (this.closed || this.#closing) return;
        this.#send(req, r);
        this.#input.drain();
      })
      // Whatever answering threw ends this connection, never the process (issue 12).
      .catch((e: unknown) => this.#fail(new RtspProtocolError('HandlerFailed', `answering ${req.method} failed: ${errorMessage(e)}`)));
  }

  /**
   * Input the reader refused: answered 400 naming what was wrong (no CSeq: it may be the bad
   * field), then the connection closes, as the byte stream cannot be resynchronised.
   */
  #unparsable(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.#log.info({ err: err.message }, 'unparsable request refused');
    const bytes = unparsableBytes(err.message);
    this.#closing = true;
    this.#publishEnded(err.message);
    this.#endPlayer(err.message);
    this.#socket.write(bytes, () => this.close(err));
  }

  /**
   * With rtsp.username/password set, every request but OPTIONS needs them, except on one-time
   * publish paths: their unguessable path is the credential, and ffmpeg children know no other.
   */
  #authorized(req: RtspRequest): AuthResult {
    const auth = this.host.auth;
    if (!auth || req.method === 'OPTIONS' || this.#publish || this.#internalReader) return { ok: true };
    if (req.method === 'ANNOUNCE' && pathOf(req.url)?.startsWith(PUBLISH_PREFIX)) return { ok: true };
    return auth.check(req.method, req.url, req.headers.get('authorization'), this.#authOwner);
  }

  /** Digest nonces are issued to one connection. */
  get #authOwner(): string {
    return `conn-${this.id}`;
  }

  /**
   * On probation, a connection may ask OPTIONS and must then publish into a one-time path (our
   * transcodes' marker was recognised before this is asked, and ended the probation).
   */
  #mayPassCap(req: RtspRequest): boolean {
    return req.method === 'OPTIONS' || (req.method === 'ANNOUNCE' && (pathOf(req.url)?.startsWith(PUBLISH_PREFIX) ?? false));
  }

  #send(req: RtspRequest, reply: Final): void {
    if (this.closed) return;
    let bytes: Buffer;
    try {
      bytes = replyBytes(req, reply, this.#sessionId === undefined ? undefined : { id: this.#sessionId, timeoutMs: this.opts.sessionTimeoutMs });
    } catch (e) {
      this.#fail(new RtspProtocolError('HandlerFailed', `cannot write the answer to ${req.method}: ${errorMessage(e)}`));
      return;
    }
    if (reply.status >= 400) {
      this.#log.info({ method: req.method, url: maskCredentials(req.url), status: reply.status, reason: reply.reason }, 'request refused');
    }
    if (!reply.end) {
      this.#socket.write(bytes);
      return;
    }
    // Let the final answer reach the client before the socket goes; input after it is ignored.
    const { why, error } = reply.end;
    this.#closing = true;
    this.#publishEnded(why);
    this.#endPlayer(why);
    this.#socket.write(bytes, () => this.close(error));
  }

  async #describe(req: RtspRequest): Promise<Final> {
    if (this.#publish) return { status: 455 };
    const target = parsePlayUrl(req.url);
    if (!target) return { status: 404, reason: reasonPhrase(404, 'no stream named in the URL') };
    if (('/' + target.name).startsWith(PUBLISH_PREFIX)) return { status: 404 };
    // A new DESCRIBE replaces this connection's player completely (DESIGN.md rule 5).
    this.#endPlayer('replaced by a new DESCRIBE');
    const socket = this.#socket;
    const player = this.host.openPlayer({
      stream: target.name,
      request: target.request,
      internal: target.internal,
      remoteAddress: plainAddress(socket.remoteAddress),
      remote: this.remote,
      localAddress: plainAddress(socket.localAddress),
      userAgent: req.headers.get('user-agent'),
      sessionTimeoutMs: this.opts.sessionTimeoutMs,
      maxSendBuffer: this.opts.maxSendBuffer,
      sink: socketSink(socket),
    });
    if (!player) return { status: 404, reason: reasonPhrase(404, `no stream "${target.name}"`) };
    this.#player = player;
    let sdp: string;
    try {
      sdp = await player.describe();
    } catch (e) {
      if (this.#player === player) this.#player = undefined;
      player.close(e instanceof Error ? e : new Error(String(e)));
      const status = e instanceof PlayError ? e.status : 503;
      return { status, reason: reasonPhrase(status, maskCredentials(errorMessage(e))) };
    }
    if (this.#player !== player || player.closed) return { status: 503, reason: reasonPhrase(503, 'session closed while starting') };
    // From now on the player may end by itself (timeout, slow reader, stream removed): so does this connection.
    player.once('close', this.#onPlayerClose);
    const base = req.url.endsWith('/') ? req.url : req.url + '/';
    return { status: 200, headers: { 'Content-Base': base }, body: Buffer.from(sdp) };
  }

  #announce(req: RtspRequest): Final {
    if (this.#publish || this.#player) return { status: 455 };
    const outcome = announcePublisher(req, this.host, this, this.#log);
    if (outcome.internal) this.#internal = true;
    if (outcome.session) this.#publish = outcome.session;
    return outcome.reply;
  }

  #setup(req: RtspRequest): Final | Promise<Final> {
    if (this.#publish) {
      const reply = this.#publish.setup(req);
      if (reply.status === 200) this.#sessionId ??= randomBytes(8).toString('hex');
      return reply;
    }
    const player = this.#player;
    if (!player) return { status: 455 };
    return player.setup(req.url, parseTransport(req.headers.get('transport') ?? '')).then((reply) => {
      if (reply.status === 200) this.#sessionId ??= randomBytes(8).toString('hex');
      return reply;
    });
  }

  #teardown(): Final {
    // A player's TEARDOWN ends its session at once (and with it the stream's source, if it was the
    // last consumer) but not the connection: RFC 2326 sessions outlive requests, and a client may
    // still have a request in flight. A publisher's ends what it fed at once, and its connection
    // after PUBLISHER_LINGER_MS: GStreamer's rtspclientsink sends PAUSE and TEARDOWN from two
    // threads and fails if the first answer closes the socket under the second.
    if (this.#player) {
      this.#endPlayer('TEARDOWN');
      this.#tornDown = true;
      return { status: 200 };
    }
    if (this.#publish) {
      this.#publishEnded('TEARDOWN');
      this.#tornDown = true;
      this.#lingerTimer ??= setTimeout(() => this.close(), PUBLISHER_LINGER_MS);
      return { status: 200 };
    }
    return { status: 200, end: { why: 'TEARDOWN' } };
  }

  #publishEnded(why: string): void {
    const p = this.#publish;
    if (!p) return;
    this.#publish = undefined;
    this.#log.info({ publish: p.slot.label, why }, 'publisher disconnected');
    p.slot.publisherGone(this, why);
  }

  /** Closes the player without taking the connection with it. */
  #endPlayer(why: string): void {
    const p = this.#player;
    if (!p) return;
    this.#player = undefined;
    p.off('close', this.#onPlayerClose);
    p.close(new Error(why));
  }

  #fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.#log.warn({ err: err.message, errName: err.name }, 'closing connection');
    this.close(err);
  }

  protected onClose(reason?: Error): Promise<void> {
    const why = reason ? reason.message : 'connection closed';
    this.#publishEnded(why);
    this.#endPlayer(why);
    this.#input.stop();
    clearTimeout(this.#probationTimer);
    clearTimeout(this.#lingerTimer);
    this.host.auth?.forget(this.#authOwner);
    this.#socket.destroy();
    this.#log.debug({ reason: reason?.message }, 'connection closed');
    return this.#socketGone;
  }
}
