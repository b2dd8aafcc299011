import express from 'express';
import http from 'node:http';
import type { Socket } from 'node:net';
import { Owned } from '../core/owned.js';
import { log } from '../core/log.js';
import { parseListen } from '../core/listen.js';
import { sendError } from './http-error.js';
import { basicAuth, type ApiCredentials } from './auth.js';

/**
 * The HTTP server and its sockets. Keeps every TCP connection in a set so that close() ends them
 * all at once instead of waiting for keep-alive timeouts.
 */
export class ApiServer extends Owned {
  readonly app = express();
  #server: http.Server;
  #sockets = new Set<Socket>();

  constructor(
    private readonly listenSpec: string,
    routes: express.Router[],
    staticDir: string,
    readonly credentials?: ApiCredentials,
  ) {
    super('ApiServer');
    this.app.disable('x-powered-by');
    if (credentials) this.app.use(basicAuth(credentials));
    for (const r of routes) this.app.use(r);
    this.app.use(express.static(staticDir, { index: 'index.html', maxAge: 0 }));
    this.app.use('/api', (req, res) => sendError(res, 404, `no such API: ${req.method} ${req.originalUrl}`));
    // Malformed JSON and oversized bodies end here, as a JSON error rather than an HTML page.
    this.app.use((err: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      sendError(res, err.status && err.status >= 400 && err.status < 600 ? err.status : 500, err.message);
    });
    this.#server = http.createServer(this.app);
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  listen(): Promise<void> {
    const { host, port } = parseListen(this.listenSpec);
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) =>
        reject(new Error(`api.listen "${this.listenSpec}": ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`));
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        log.info({ listen: this.address }, 'api listening');
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

  /** Upgrade requests (WebSocket signalling) reach here. */
  get http(): http.Server {
    return this.#server;
  }

  protected onClose(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    return closed;
  }
}
