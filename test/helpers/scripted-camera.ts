// A scripted RTSP "camera" on 127.0.0.1 for malformed-input tests: it parses our requests with the
// real message reader and answers each method as a test says, defaulting to a sane H.264 camera.
// With stream(), PLAY starts real H.264 RTP (a clip, looped) interleaved on the first SETUP's channel.
import net from 'node:net';
import { packetizeH264 } from '../../src/rtp/h264-packetizer.js';
import { payloadBytes } from '../../src/rtp/payload.js';
import { writeRtpHeader } from '../../src/rtp/packet.js';
import { RtspHeaders, RtspMessageReader, serializeResponse, type RtspRequest } from '../../src/rtsp/message.js';
import type { H264Clip } from './h264-clip.js';

export interface StreamOptions {
  clip: H264Clip;
  /** The payload type of the H.264 packets. */
  payloadType: number;
  /** Also sends a packet of junk under this payload type before every frame (a second codec the SDP lists). */
  otherPayloadType?: number;
}

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
  #stream: StreamOptions | undefined;
  /** RTP packets sent under the H.264 payload type, over every connection. */
  rtpSent = 0;
  /** Interleaved data the client sent (a backchannel), in order of arrival. */
  readonly received: Array<{ conn: number; channel: number; payload: Buffer }> = [];

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

  /** From now on, PLAY's default answer is followed by RTP of `opts.clip`, paced at its frame rate. */
  stream(opts: StreamOptions): void {
    this.#stream = opts;
  }

  #startRtp(s: net.Socket, channel: number): void {
    const opts = this.#stream;
    if (!opts) return;
    const ssrc = 0x1234abcd;
    let seq = 0;
    let frame = 0;
    const send = (pt: number, marker: boolean, timestamp: number, payload: Buffer) => {
      const pkt = Buffer.alloc(12 + payload.length);
      writeRtpHeader(pkt, 0, { marker, payloadType: pt, sequenceNumber: seq++, timestamp, ssrc });
      payload.copy(pkt, 12);
      const head = Buffer.from([0x24, channel, pkt.length >> 8, pkt.length & 0xff]);
      s.write(Buffer.concat([head, pkt]));
    };
    const timer = setInterval(() => {
      if (s.destroyed) return clearInterval(timer);
      const timestamp = Math.round((frame * 90000) / opts.clip.fps);
      const unit = opts.clip.units[frame % opts.clip.units.length]!;
      frame++;
      if (opts.otherPayloadType !== undefined) send(opts.otherPayloadType, true, timestamp, Buffer.from([0x00, 0x00, 0x01, 0xb6, 0xde, 0xad]));
      for (const p of packetizeH264(unit)) {
        send(opts.payloadType, p.marker, timestamp, payloadBytes(p));
        this.rtpSent++;
      }
    }, 1000 / opts.clip.fps);
    s.once('close', () => clearInterval(timer));
  }

  #accept(s: net.Socket): void {
    const conn = this.connections++;
    let channel: number | undefined;
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
        if (item.type === 'interleaved') this.received.push({ conn, channel: item.channel, payload: item.payload });
        if (item.type !== 'request') continue;
        this.requests.push({ conn, method: item.method, url: item.url, headers: item.headers });
        if (item.method === 'SETUP' && channel === undefined) {
          const m = /interleaved=(\d+)/.exec(item.headers.get('transport') ?? '');
          if (m) channel = Number(m[1]);
        }
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
        if (item.method === 'PLAY' && channel !== undefined) this.#startRtp(s, channel);
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
