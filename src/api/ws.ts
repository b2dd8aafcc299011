// go2rtc's WebSocket API at /api/ws, attached to the API's http.Server through its 'upgrade'
// event (Express never sees upgrade requests). Owns the WebSocketServer and every signalling
// socket; the WebRTC sessions those sockets open belong to the SessionTable.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Owned } from '../core/owned.js';
import { log } from '../core/log.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';
import { checkBrowserRequest, type BrowserPolicy } from './host-check.js';
import type { WebRtcContext } from './routes-webrtc.js';
import { WsConnection } from './ws-connection.js';
import type { MjpegHub } from '../outputs/mjpeg-hub.js';
import type { HlsSessions } from '../outputs/hls/sessions.js';

/** Bounds one message; an SDP offer is a few kB, so 1 MB is generous. */
export const WS_MAX_PAYLOAD = 1024 * 1024;
export const WS_PATH = '/api/ws';

export interface WsContext extends WebRtcContext {
  /**
   * When set, an upgrade it refuses gets 401 (Basic auth on the whole API: upgrade requests do not
   * pass through Express middleware, so the check has to be given here too).
   */
  authorize?: (req: IncomingMessage) => boolean;
  /** Host/Origin rules for browsers (the same as the HTTP API's). */
  browser: BrowserPolicy;
  /** api.idle_timeout (ms): a socket that sends nothing and answers no ping for this long is closed. */
  idleTimeout: number;
  /** The shared MJPEG encoders, for {"type":"mjpeg"}; absent: refused as not supported. */
  mjpeg?: MjpegHub;
  /** The HLS sessions of GET /api/stream.m3u8, for {"type":"hls"}; absent: refused as not supported. */
  hls?: HlsSessions;
}

const refusedLog = new LogThrottle('ws refused a browser upgrade', 10_000, 'info');

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
    // Before auth, as for HTTP: a rebound page learns nothing.
    const refusal = checkBrowserRequest(req.method ?? 'GET', req.headers, this.ctx.browser, true);
    if (refusal) {
      countRefusal(refusal.reason);
      refusedLog.hit({ reason: refusal.reason, origin: req.headers.origin, host: req.headers.host, remote: req.socket.remoteAddress });
      refuse(socket, 403, 'Forbidden', '', refusal.message);
      return;
    }
    if (this.ctx.authorize && !this.ctx.authorize(req)) {
      refuse(socket, 401, 'Unauthorized', 'WWW-Authenticate: Basic realm="camrelay"\r\n');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (this.closed) {
        ws.terminate();
        return;
      }
      let conn: WsConnection;
      try {
        conn = new WsConnection(ws, req, url, this.ctx, this.ctx.idleTimeout);
      } catch (e) {
        // Inside ws's callback a throw would reach no one but the last resort: end this socket only.
        log.error({ err: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined }, 'ws connection setup failed');
        ws.terminate();
        return;
      }
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

function refuse(socket: Duplex, status: number, text: string, headers = '', error?: string): void {
  const body = error === undefined ? '' : JSON.stringify({ error });
  socket.once('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  const type = body ? 'Content-Type: application/json\r\n' : '';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`);
}
