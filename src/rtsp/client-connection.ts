import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { SourceError, errorMessage, isUnreachable } from '../core/errors.js';
import { maskCredentials, type Logger } from '../core/log.js';
import { Owned } from '../core/owned.js';
import { AuthAnswerer, parseChallenges } from './auth.js';
import { RtspParseError } from './errors.js';
import { interleavedHeader, RtspHeaders, RtspMessageReader, serializeRequest, serializeResponse, type RtspItem, type RtspReaderLimits, type RtspRequest, type RtspResponse } from './message.js';
import type { CameraUrl } from './url.js';

// One TCP (or TLS) connection from camrelay to a camera: requests with CSeq matching, the camera's
// authentication challenge answered from the URL's user info, and interleaved frames handed on.
// Every failure closes it with a SourceError whose message says what happened, never a password.

export interface ClientConnectionOptions {
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** How long close() lets a TEARDOWN and our FIN go out before it destroys the socket. */
  teardownGraceMs: number;
  userAgent: string;
  readerLimits: RtspReaderLimits;
}

interface Pending {
  method: string;
  resolve: (r: RtspResponse) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Emits 'interleaved' (channel: number, payload: Buffer) and 'close' (SourceError?) once. */
export class RtspClientConnection extends Owned {
  /** Resolves once TCP (and TLS) is up; rejects with the connection error. */
  readonly connected: Promise<void>;
  /** The session id from SETUP; sent with every later request. */
  session: string | undefined;
  /** Set once a session exists: close() sends TEARDOWN for it. */
  teardownUrl: string | undefined;
  #socket: Socket;
  #reader: RtspMessageReader;
  #cseq = 0;
  #pending = new Map<number, Pending>();
  #auth: AuthAnswerer | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #gone: Promise<void>;
  #isUp = false;
  #closeReason: SourceError | undefined;

  constructor(
    readonly target: CameraUrl,
    private readonly opts: ClientConnectionOptions,
    private readonly log: Logger,
  ) {
    super('RtspClientConnection');
    this.#reader = new RtspMessageReader(opts.readerLimits);
    const { host, port } = this.target;
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const socket: Socket = target.tls
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: target.verifyCertificate })
      : net.connect({ host, port });
    this.#socket = socket;
    this.#gone = new Promise((resolve) => socket.once('close', () => resolve()));
    let tcpUp = false;
    this.connected = new Promise<void>((resolve, reject) => {
      socket.once(target.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(this.#connectTimer);
        this.#isUp = true;
        resolve();
      });
      this.once('close', (err?: Error) => reject(err ?? new SourceError('connection closed before it was up')));
    });
    this.connected.catch(() => {}); // the owner awaits it or not; never an unhandled rejection
    this.#connectTimer = setTimeout(
      () => this.close(new SourceError(`connect to ${where}: no connection within ${opts.connectTimeoutMs} ms`)),
      opts.connectTimeoutMs,
    );
    socket.once('connect', () => (tcpUp = true));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (e) => {
      // Node's own words name the cause ('connect ECONNREFUSED 127.0.0.1:554', 'read ECONNRESET').
      const tlsFailed = target.tls && tcpUp && !this.#isUp;
      // Refused, reset or an unknown host: waiting viewers hear of it at once (fail fast).
      this.close(new SourceError(maskCredentials(tlsFailed ? `TLS handshake with ${where}: ${e.message}` : e.message), false, isUnreachable(e)));
    });
    socket.on('end', () => this.close(new SourceError('camera closed the connection')));
    socket.on('close', () => this.close(new SourceError('camera closed the connection')));
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }
  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }
  get remoteFamily(): string | undefined {
    return this.#socket.remoteFamily;
  }

  /**
   * One RTP packet on an interleaved channel (RFC 2326 10.12): `$`, the channel, the length, the
   * packet. False (nothing written) when the socket already holds `maxQueued` bytes unsent: a
   * camera that does not read its backchannel must not grow our memory.
   */
  writeInterleaved(channel: number, packet: Buffer, maxQueued: number): boolean {
    if (this.closed || !this.#isUp || this.#socket.writableLength > maxQueued || packet.length > 0xffff) return false;
    this.#socket.cork();
    this.#socket.write(interleavedHeader(channel, packet.length));
    this.#socket.write(packet);
    this.#socket.uncork();
    return true;
  }

  /**
   * Sends a request and resolves with the camera's answer, whatever its status, except 401: that
   * one is answered once with the URL's credentials, and a second 401 rejects (permanently).
   * Rejects with a SourceError when the connection fails or no answer comes in time.
   */
  async request(method: string, url: string, headers: Record<string, string> = {}): Promise<RtspResponse> {
    let res = await this.#roundTrip(method, url, headers);
    if (res.status !== 401) return res;
    const creds = this.target.credentials;
    if (!creds) throw new SourceError(`${method}: 401 ${res.reason || 'Unauthorized'} (the camera wants a username and password; the URL has none)`, true);
    const challenges = parseChallenges(res.headers.getAll('www-authenticate'));
    const challenge = challenges[0];
    const stale = challenge?.scheme === 'digest' && /^true$/i.test(challenge.params.stale ?? '');
    if (!challenge || (this.#auth && !stale)) {
      throw new SourceError(`${method}: 401 ${res.reason || 'Unauthorized'} (${challenge ? 'wrong username or password' : 'no challenge camrelay can answer'})`, true);
    }
    this.#auth = new AuthAnswerer(creds, challenge);
    res = await this.#roundTrip(method, url, headers);
    if (res.status === 401) throw new SourceError(`${method}: 401 ${res.reason || 'Unauthorized'} (wrong username or password)`, true);
    return res;
  }

  #roundTrip(method: string, url: string, extra: Record<string, string>): Promise<RtspResponse> {
    if (this.closed) {
      const why = this.#closeReason;
      return Promise.reject(new SourceError(`${method}: ${why ? why.message : 'connection closed'}`, why?.permanent, why?.immediate));
    }
    const cseq = ++this.#cseq;
    const headers = new RtspHeaders({ CSeq: cseq, 'User-Agent': this.opts.userAgent });
    if (this.session) headers.set('Session', this.session);
    if (this.#auth) headers.set('Authorization', this.#auth.header(method, url));
    for (const [k, v] of Object.entries(extra)) headers.set(k, v);
    this.log.debug({ method, url: maskCredentials(url), cseq }, 'request');
    return new Promise<RtspResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cseq);
        reject(new SourceError(`${method}: no answer within ${this.opts.requestTimeoutMs} ms`));
      }, this.opts.requestTimeoutMs);
      this.#pending.set(cseq, { method, resolve, reject, timer });
      this.#socket.write(serializeRequest({ method, url, headers }));
    });
  }

  #onData(chunk: Buffer): void {
    if (this.closed) return; // draining while a TEARDOWN goes out
    let items: RtspItem[];
    try {
      items = this.#reader.push(chunk);
    } catch (e) {
      const what = e instanceof RtspParseError ? e.message : errorMessage(e);
      this.close(new SourceError(`camera sent a malformed message: ${what}`));
      return;
    }
    for (const item of items) {
      if (this.closed) return;
      if (item.type === 'interleaved') this.emit('interleaved', item.channel, item.payload);
      else if (item.type === 'response') this.#response(item);
      else this.#cameraRequest(item);
    }
  }

  #response(res: RtspResponse): void {
    const cseq = Number(res.headers.get('cseq'));
    // A camera that leaves CSeq out answers in order: the oldest request is the one answered.
    const key = this.#pending.has(cseq) ? cseq : res.headers.has('cseq') ? undefined : this.#pending.keys().next().value;
    const p = key === undefined ? undefined : this.#pending.get(key);
    if (!p || key === undefined) {
      this.log.debug({ status: res.status, cseq: res.headers.get('cseq') }, 'answer to no pending request (late or unknown CSeq); ignored');
      return;
    }
    this.#pending.delete(key);
    clearTimeout(p.timer);
    this.log.debug({ method: p.method, status: res.status, cseq: key }, 'answer');
    p.resolve(res);
  }

  /** Cameras may ask things too (OPTIONS as a keep-alive, ANNOUNCE of a change): answer politely. */
  #cameraRequest(req: RtspRequest): void {
    const ok = req.method === 'OPTIONS' || req.method === 'GET_PARAMETER' || req.method === 'SET_PARAMETER';
    const headers = new RtspHeaders();
    const cseq = req.headers.get('cseq');
    if (cseq !== undefined) headers.set('CSeq', cseq);
    this.log.debug({ method: req.method }, 'request from the camera');
    this.#socket.write(serializeResponse({ status: ok ? 200 : 501, headers }));
  }

  /** Why the connection ended by itself; undefined while open or after an owner's close(). */
  get closeReason(): SourceError | undefined {
    return this.#closeReason;
  }

  protected onClose(reason?: Error): Promise<void> {
    clearTimeout(this.#connectTimer);
    if (reason) this.#closeReason = reason instanceof SourceError ? reason : new SourceError(reason.message);
    const err = reason ?? new SourceError('connection closed');
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err instanceof SourceError ? new SourceError(`${p.method}: ${err.message}`, err.permanent, err.immediate) : err);
    }
    this.#pending.clear();
    const s = this.#socket;
    if (this.#isUp && this.teardownUrl && !s.destroyed && s.writable) {
      // Best effort: the TEARDOWN and our FIN go out, the camera closes its side, and if it does
      // not within the grace the socket is destroyed anyway. Its answer is not awaited.
      const headers = new RtspHeaders({ CSeq: ++this.#cseq, 'User-Agent': this.opts.userAgent });
      if (this.session) headers.set('Session', this.session);
      if (this.#auth) headers.set('Authorization', this.#auth.header('TEARDOWN', this.teardownUrl));
      s.end(serializeRequest({ method: 'TEARDOWN', url: this.teardownUrl, headers }));
      this.#graceTimer = setTimeout(() => s.destroy(), this.opts.teardownGraceMs);
    } else {
      s.destroy();
    }
    return this.#gone.then(() => clearTimeout(this.#graceTimer));
  }
}
