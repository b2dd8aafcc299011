import express from 'express';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Owned } from '../core/owned.js';
import { log } from '../core/log.js';
import { parseListen } from '../core/listen.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';
import { isFdExhausted, reportFdExhausted } from '../process/fd-limit.js';
import { sendError } from './http-error.js';
import { basicAuth, type ApiCredentials } from './auth.js';
import { checkBrowserRequest, type BrowserPolicy } from './host-check.js';
import { ConnectionLimit } from './connection-limit.js';
import type { TlsCredentials } from './tls.js';

export interface ApiServerOptions {
  /** Host/Origin rules for browser requests (DNS rebinding, cross-site writes). */
  browser: BrowserPolicy;
  /** api.max_connections. */
  maxConnections: number;
  /** api.header_timeout (ms): a request's headers, an upgrade's included, must be in by then. */
  headerTimeout: number;
  /** api.tls_listen with its certificate and key (src/api/tls.ts): HTTPS beside HTTP. */
  tls?: { listen: string; credentials: TlsCredentials };
}

/** go2rtc's three CORS headers for `api.origin: "*"`. */
function allowAnyOrigin(_req: express.Request, res: express.Response, next: express.NextFunction): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
  next();
}

const refusedLog = new LogThrottle('api refused a browser request', 10_000, 'info');
const slowLog = new LogThrottle('api.header_timeout: cut a connection that did not send its request headers in time', 10_000, 'info');
const tlsSlowLog = new LogThrottle('api.header_timeout: cut an HTTPS connection that did not finish its TLS handshake in time', 10_000, 'info');
const tlsFailLog = new LogThrottle('api tls handshake failed (a plain-HTTP request to the HTTPS port, or a client that refused the certificate)', 10_000, 'info');

/** The connection a request or upgrade came on, as ConnectionLimit knows it: a TLS socket's key is its TCP socket's address pair. */
const peerKey = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string => `${s.remoteAddress ?? ''}\0${s.remotePort ?? ''}`;

/**
 * The HTTP server, the HTTPS server (api.tls_listen) when configured, and their sockets: one
 * express app behind both. Keeps every TCP connection of both (one ConnectionLimit:
 * api.max_connections bounds them together, as the open-files budget does) so that close() ends
 * them all at once instead of waiting for keep-alive timeouts. api.listen "" means no HTTP
 * listener (go2rtc's way to serve HTTPS only).
 */
export class ApiServer extends Owned {
  readonly app = express();
  #server: http.Server;
  #tlsServer: https.Server | undefined;
  /** The TCP socket under each TLS connection, by its address pair (TLSSocket and TCP socket share it). */
  #tlsRaw = new Map<string, Socket>();
  #conns: ConnectionLimit;
  #listening = false;
  #tlsListening = false;

  constructor(
    private readonly listenSpec: string,
    routes: express.Router[],
    staticDir: string,
    readonly credentials: ApiCredentials | undefined,
    readonly options: ApiServerOptions,
  ) {
    super('ApiServer');
    this.app.disable('x-powered-by');
    // api.origin "*" (go2rtc's): every answer, refusals included, may be read by a page of any
    // origin (a dashboard card served by Home Assistant on another port).
    if (options.browser.origin === '*') this.app.use(allowAnyOrigin);
    // Before auth: a rebound page must not even learn whether the API asks for a password.
    this.app.use((req, res, next) => {
      const refusal = checkBrowserRequest(req.method, req.headers, options.browser);
      if (!refusal) return next();
      countRefusal(refusal.reason);
      refusedLog.hit({ reason: refusal.reason, method: req.method, url: req.originalUrl, host: req.headers.host, origin: req.headers.origin, remote: req.socket.remoteAddress });
      sendError(res, 403, refusal.message);
    });
    // A preflight carries no credentials and changes nothing: answered on every path, before
    // auth (go2rtc answers some with 405 or 401, which fails the request that follows).
    if (options.browser.origin === '*') {
      this.app.use((req, res, next) => (req.method === 'OPTIONS' ? res.status(204).end() : next()));
    }
    if (credentials) this.app.use(basicAuth(credentials));
    for (const r of routes) this.app.use(r);
    this.app.use(express.static(staticDir, { index: 'index.html', maxAge: 0 }));
    this.app.use('/api', (req, res) => sendError(res, 404, `no such API: ${req.method} ${req.originalUrl}`));
    // Malformed JSON and oversized bodies end here, as a JSON error rather than an HTML page.
    this.app.use((err: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      sendError(res, err.status && err.status >= 400 && err.status < 600 ? err.status : 500, err.message);
    });
    const headerTimeout = options.headerTimeout;
    const httpOptions: http.ServerOptions = {
      // Node checks both deadlines on this interval (30 s by default): it bounds how late a cut comes.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headerTimeout / 4))),
      headersTimeout: headerTimeout,
      // The whole request, body included (a PUT or an SDP offer is a few kB).
      requestTimeout: Math.max(headerTimeout, 30_000),
    };
    this.#server = http.createServer(httpOptions, this.app);
    this.#conns = new ConnectionLimit(options.maxConnections);
    this.#server.on('connection', (s: Socket) => this.#conns.admit(s));
    this.#server.on('request', this.#onRequest);
    // Runs before WsSignalling's listener (registered later): the socket is long-lived from here.
    this.#server.on('upgrade', (req: http.IncomingMessage) => this.#conns.upgraded(this.#connectionOf(req.socket)));
    this.#server.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(e, socket));
    // After listen() an accept() that fails (EMFILE) arrives here; unhandled, it would end the process.
    this.#server.on('error', (e: NodeJS.ErrnoException) => {
      if (!this.#listening) return; // listen() answers these
      if (isFdExhausted(e)) reportFdExhausted('api', { code: e.code });
      else log.error({ err: e.message, code: e.code }, 'api server error');
    });
    if (options.tls) this.#tlsServer = this.#makeTlsServer(httpOptions, options.tls.credentials);
  }

  /**
   * The HTTPS server: the same app, deadlines and connection limit; its upgrades are handed to the
   * HTTP server's 'upgrade' listeners (the connection limit's and WsSignalling's), so /api/ws is
   * the same over both.
   */
  #makeTlsServer(httpOptions: http.ServerOptions, credentials: TlsCredentials): https.Server {
    const server = https.createServer(
      // The handshake comes before the request's headers: it gets the same deadline.
      { ...httpOptions, cert: credentials.cert, key: credentials.key, handshakeTimeout: this.options.headerTimeout },
      this.app,
    );
    // Admitted as TCP sockets, before the handshake: a flood of half-open handshakes counts too.
    server.on('connection', (s: Socket) => {
      if (!this.#conns.admit(s)) return;
      const key = peerKey(s);
      this.#tlsRaw.set(key, s);
      s.once('close', () => {
        if (this.#tlsRaw.get(key) === s) this.#tlsRaw.delete(key);
      });
    });
    server.on('request', this.#onRequest);
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#server.emit('upgrade', req, socket, head));
    server.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(e, socket));
    // A failed handshake (node has destroyed the socket): a timeout is the header deadline's cut.
    server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: Socket) => {
      if (e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
        countRefusal('header_timeout');
        tlsSlowLog.hit({ timeout_ms: this.options.headerTimeout, remote: socket.remoteAddress });
      } else {
        tlsFailLog.hit({ err: e.message, remote: socket.remoteAddress });
      }
    });
    server.on('error', (e: NodeJS.ErrnoException) => {
      if (!this.#tlsListening) return; // listen() answers these
      if (isFdExhausted(e)) reportFdExhausted('api', { code: e.code });
      else log.error({ err: e.message, code: e.code }, 'api tls server error');
    });
    return server;
  }

  /** A request in progress keeps its connection busy (not idle) until its response closes. */
  readonly #onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const done = this.#conns.requestStarted(this.#connectionOf(req.socket));
    res.once('close', done);
  };

  /** The TCP socket ConnectionLimit holds for a request's socket (itself, or the one under its TLS). */
  #connectionOf(s: Socket): Socket {
    return (s as Socket & { encrypted?: boolean }).encrypted === true ? (this.#tlsRaw.get(peerKey(s)) ?? s) : s;
  }

  /** Node's default answers, plus counting the header deadline. */
  #clientError(e: NodeJS.ErrnoException, socket: Duplex): void {
    socket.once('error', () => undefined);
    if (e.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    let status = '400 Bad Request';
    if (e.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      countRefusal('header_timeout');
      slowLog.hit({ timeout_ms: this.options.headerTimeout, remote: (socket as Socket).remoteAddress });
      status = '408 Request Timeout';
    } else if (e.code === 'HPE_HEADER_OVERFLOW') status = '431 Request Header Fields Too Large';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
  }

  /** HTTP on api.listen (unless ""), then HTTPS on api.tls_listen (if set); rejects naming the key. */
  async listen(): Promise<void> {
    if (this.listenSpec !== '') {
      await bind(this.#server, 'api.listen', this.listenSpec);
      this.#listening = true;
      log.info({ listen: this.address, max_connections: this.options.maxConnections, header_timeout_ms: this.options.headerTimeout }, 'api listening');
    }
    const tls = this.options.tls;
    if (tls && this.#tlsServer) {
      await bind(this.#tlsServer, 'api.tls_listen', tls.listen);
      this.#tlsListening = true;
      const c = tls.credentials;
      log.info(
        { listen: this.tlsAddress, cert: c.certFrom, key: c.keyFrom, subject: c.subject, alt_names: c.altNames, valid_to: c.validTo, max_connections_shared: this.options.maxConnections },
        'api tls listening',
      );
      if (Date.parse(c.validTo) < Date.now()) log.warn({ cert: c.certFrom, valid_to: c.validTo }, 'api.tls_cert has expired: browsers will refuse it');
    }
    if (this.listenSpec === '' && !tls) log.warn('api.listen is "" and api.tls_listen is not set: no HTTP API, page or WebSocket (as in go2rtc)');
  }

  get port(): number {
    const a = this.#server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Where HTTP listens ("" when api.listen is ""). */
  get address(): string {
    return addressOf(this.#server);
  }

  /** Where HTTPS listens ("" without api.tls_listen). */
  get tlsAddress(): string {
    return this.#tlsServer ? addressOf(this.#tlsServer) : '';
  }

  /** Open TCP connections (HTTP and WebSocket). */
  get connections(): number {
    return this.#conns.size;
  }

  /** Upgrade requests (WebSocket signalling) reach here, those on the HTTPS listener included. */
  get http(): http.Server {
    return this.#server;
  }

  protected onClose(): Promise<void> {
    const servers = [this.#server, this.#tlsServer].filter((s): s is http.Server => s !== undefined);
    const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const s of [...this.#conns.all()]) s.destroy();
    this.#tlsRaw.clear();
    return closed.then(() => undefined);
  }
}

function addressOf(server: http.Server): string {
  const a = server.address();
  return a && typeof a === 'object' ? `${a.address}:${a.port}` : '';
}

/** listen() on a go2rtc listen address; the error names the config key. */
function bind(server: http.Server, key: string, spec: string): Promise<void> {
  const { host, port } = parseListen(spec);
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => reject(new Error(`${key} "${spec}": ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
