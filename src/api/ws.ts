// go2rtc's WebSocket API at /api/ws, attached to the API's http.Server through its 'upgrade'
// event (Express never sees upgrade requests). Owns the WebSocketServer and every signalling
// socket; the WebRTC sessions those sockets open belong to the SessionTable.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Owned } from '../core/owned.js';
import { log } from '../core/log.js';
import type { WebRtcContext } from './routes-webrtc.js';
import { WsConnection } from './ws-connection.js';

/** Bounds one message; an SDP offer is a few kB, so 1 MB is generous. */
export const WS_MAX_PAYLOAD = 1024 * 1024;
export const WS_PATH = '/api/ws';

export interface WsContext extends WebRtcContext {
  /**
   * When set, an upgrade it refuses gets 401 (Basic auth on the whole API: upgrade requests do not
   * pass through Express middleware, so the check has to be given here too).
   */
  authorize?: (req: IncomingMessage) => boolean;
  /** go2rtc's `api.origin`: '' (default) = no Origin header or the same host; '*' = any origin. */
  origin?: '' | '*';
}

export class WsSignalling extends Owned {
  #wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD, perMessageDeflate: false, clientTracking: false });
  #connections = new Set<WsConnection>();
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head);

  constructor(
    private readonly server: Server,
    private readonly ctx: WsContext,
  ) {
    super('WsSignalling');
    server.on('upgrade', this.#onUpgrade);
  }

  /** Open signalling sockets. */
  get size(): number {
    return this.#connections.size;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      socket.destroy();
      return;
    }
    if (this.closed || url.pathname !== WS_PATH) {
      socket.destroy();
      return;
    }
    if (this.ctx.authorize && !this.ctx.authorize(req)) {
      refuse(socket, 401, 'Unauthorized', 'WWW-Authenticate: Basic realm="camrelay"\r\n');
      return;
    }
    if (!originAllowed(req, this.ctx.origin ?? '')) {
      log.info({ origin: req.headers.origin, host: req.headers.host }, 'ws refused: cross-origin request');
      refuse(socket, 403, 'Forbidden');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (this.closed) {
        ws.terminate();
        return;
      }
      const conn = new WsConnection(ws, req, url, this.ctx);
      this.#connections.add(conn);
      conn.once('close', () => this.#connections.delete(conn));
    });
  }

  protected onClose(): Promise<void> {
    this.server.off('upgrade', this.#onUpgrade);
    const all = [...this.#connections];
    for (const c of all) c.close(new Error('server shutdown'), 1001);
    // With noServer the WebSocketServer holds no socket of its own; this only ends its state.
    this.#wss.close();
    return Promise.all(all.map((c) => c.done)).then(() => undefined);
  }
}

/** go2rtc's default CheckOrigin: no Origin header, or its host equals Host (port ignored on the Origin side). */
export function originAllowed(req: IncomingMessage, policy: '' | '*'): boolean {
  if (policy === '*') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const reqHost = req.headers.host ?? '';
  if (host === reqHost) return true;
  const i = host.lastIndexOf(':');
  return i > 0 && !host.endsWith(']') && host.slice(0, i) === reqHost;
}

function refuse(socket: Duplex, status: number, text: string, headers = ''): void {
  socket.once('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n${headers}\r\n`);
}
