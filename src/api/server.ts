import express from 'express';
import http from 'node:http';
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

export interface ApiServerOptions {
  /** Host/Origin rules for browser requests (DNS rebinding, cross-site writes). */
  browser: BrowserPolicy;
  /** api.max_connections. */
  maxConnections: number;
  /** api.header_timeout (ms): a request's headers, an upgrade's included, must be in by then. */
  headerTimeout: number;
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

/**
 * The HTTP server and its sockets. Keeps every TCP connection (ConnectionLimit) so that close()
 * ends them all at once instead of waiting for keep-alive timeouts.
 */
export class ApiServer extends Owned {
  readonly app = express();
  #server: http.Server;
  #conns: ConnectionLimit;
  #listening = false;

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
    this.#server = http.createServer(
      {
        // Node checks both deadlines on this interval (30 s by default): it bounds how late a cut comes.
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headerTimeout / 4))),
        headersTimeout: headerTimeout,
        // The whole request, body included (a PUT or an SDP offer is a few kB).
        requestTimeout: Math.max(headerTimeout, 30_000),
      },
      this.app,
    );
    this.#conns = new ConnectionLimit(options.maxConnections);
    this.#server.on('connection', (s: Socket) => this.#conns.admit(s));
    this.#server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const done = this.#conns.requestStarted(req.socket);
      res.once('close', done);
    });
    // Runs before WsSignalling's listener (registered later): the socket is long-lived from here.
    this.#server.on('upgrade', (req: http.IncomingMessage) => this.#conns.upgraded(req.socket));
    this.#server.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(e, socket));
    // After listen() an accept() that fails (EMFILE) arrives here; unhandled, it would end the process.
    this.#server.on('error', (e: NodeJS.ErrnoException) => {
      if (!this.#listening) return; // listen() answers these
      if (isFdExhausted(e)) reportFdExhausted('api', { code: e.code });
      else log.error({ err: e.message, code: e.code }, 'api server error');
    });
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

  listen(): Promise<void> {
    const { host, port } = parseListen(this.listenSpec);
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) =>
        reject(new Error(`api.listen "${this.listenSpec}": ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`));
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        this.#listening = true;
        log.info({ listen: this.address, max_connections: this.options.maxConnections, header_timeout_ms: this.options.headerTimeout }, 'api listening');
        resolve();
      });
    });
  }

  get port(): number {
    const a = this.#server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  get address(): string {
    const a = this.#server.address();
    return a && typeof a === 'object' ? `${a.address}:${a.port}` : '';
  }

  /** Open TCP connections (HTTP and WebSocket). */
  get connections(): number {
    return this.#conns.size;
  }

  /** Upgrade requests (WebSocket signalling) reach here. */
  get http(): http.Server {
    return this.#server;
  }

  protected onClose(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of [...this.#conns.all()]) s.destroy();
    return closed;
  }
}
