// A scripted RTSP "camera" on 127.0.0.1 for malformed-input tests: it parses our requests with the
// real message reader and answers each method as a test says, defaulting to a sane H.264 camera.
import net from 'node:net';
import { RtspHeaders, RtspMessageReader, serializeResponse, type RtspRequest } from '../../src/rtsp/message.js';

export const H264_SDP = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=scripted',
  't=0 0',
  'm=video 0 RTP/AVP 96',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==',
  'a=control:track1',
  '',
].join('\r\n');

export interface Exchange {
  req: RtspRequest;
  socket: net.Socket;
  /** Index of this connection (0 first). */
  conn: number;
  /** Sends a response with the request's CSeq. */
  reply(status: number, headers?: Record<string, string>, body?: string | Buffer, reason?: string): void;
  /** Sends raw bytes as they are. */
  raw(bytes: string | Buffer): void;
}

/** Returns true when it answered; false lets the default answer go. */
export type Script = Partial<Record<string, (x: Exchange) => boolean | void>>;

export class ScriptedCamera {
  readonly server: net.Server;
  readonly sockets = new Set<net.Socket>();
  readonly requests: Array<{ conn: number; method: string; url: string; headers: RtspHeaders }> = [];
  connections = 0;
  port = 0;
  #script: Script = {};

  constructor() {
    this.server = net.createServer((s) => this.#accept(s));
  }

  static async start(): Promise<ScriptedCamera> {
    const c = new ScriptedCamera();
    await new Promise<void>((r) => c.server.listen(0, '127.0.0.1', r));
    c.port = (c.server.address() as net.AddressInfo).port;
    return c;
  }

  url(path = '/cam'): string {
    return `rtsp://127.0.0.1:${this.port}${path}`;
  }

  /** Sets the script for the next connections and forgets earlier requests. */
  use(script: Script): void {
    this.#script = script;
    this.requests.length = 0;
    this.connections = 0;
  }

  #accept(s: net.Socket): void {
    const conn = this.connections++;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    const reader = new RtspMessageReader();
    s.on('data', (chunk: Buffer) => {
      let items;
      try {
        items = reader.push(chunk);
      } catch {
        s.destroy();
        return;
      }
      for (const item of items) {
        if (item.type !== 'request') continue;
        this.requests.push({ conn, method: item.method, url: item.url, headers: item.headers });
        const x: Exchange = {
          req: item,
          socket: s,
          conn,
          reply: (status, headers = {}, body, reason) => {
            const h = new RtspHeaders({ CSeq: item.headers.get('cseq') ?? '0', ...headers });
            if (!s.destroyed) s.write(serializeResponse({ status, reason, headers: h, body: body === undefined ? undefined : Buffer.from(body) }));
          },
          raw: (bytes) => {
            if (!s.destroyed) s.write(bytes);
          },
        };
        const handler = this.#script[item.method];
        if (handler && handler(x) !== false) continue;
        this.#default(x);
      }
    });
  }

  #default(x: Exchange): void {
    switch (x.req.method) {
      case 'OPTIONS':
        return x.reply(200, { Public: 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER' });
      case 'DESCRIBE':
        return x.reply(200, { 'Content-Type': 'application/sdp', 'Content-Base': this.url() + '/' }, H264_SDP);
      case 'SETUP':
        return x.reply(200, { Transport: x.req.headers.get('transport') ?? '', Session: '12345678;timeout=60' });
      default:
        return x.reply(200, { Session: '12345678' });
    }
  }

  /** Active connections as the server counts them. */
  count(): Promise<number> {
    return new Promise((resolve, reject) => this.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
