// A hand-driven RTSP player on a raw TCP socket: DESCRIBE, SETUP of every track interleaved,
// PLAY, then it records the RTP header of every packet it receives. Tests use it for what real
// players do not let them see or do: sequence numbers, a reader that stops reading, silence.
import { connect, type Socket } from 'node:net';
import { RtspHeaders, RtspMessageReader, serializeRequest, type RtspResponse } from '../../src/rtsp/message.js';

export interface RtpRecord {
  channel: number;
  seq: number;
  timestamp: number;
  marker: boolean;
  payloadType: number;
  ssrc: number;
  /** First payload byte (an H.264 NAL header or FU indicator). */
  firstByte: number;
  /** performance.now() at arrival. */
  at: number;
}

export class RawRtspPlayer {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  readonly packets: RtpRecord[] = [];
  /** RTCP packets received (first packet of each compound): channel, type, SSRC, raw bytes. */
  readonly rtcp: { channel: number; packetType: number; ssrc: number; data: Buffer }[] = [];
  #reader = new RtspMessageReader({ maxHeaderBytes: 16 * 1024, maxBodyBytes: 64 * 1024 });
  #responses: RtspResponse[] = [];
  #cseq = 0;
  #waiting: (() => void) | undefined;
  #session: string | undefined;
  /** Interleaved channel of each track's RTP, by track index. */
  channels: number[] = [];

  constructor(readonly port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      for (const item of this.#reader.push(chunk)) {
        if (item.type === 'response') this.#responses.push(item);
        else if (item.type === 'interleaved' && item.channel % 2 === 1 && item.payload.length >= 8) {
          const p = item.payload;
          this.rtcp.push({ channel: item.channel, packetType: p[1]!, ssrc: p.readUInt32BE(4), data: Buffer.from(p) });
        }
        else if (item.type === 'interleaved' && item.channel % 2 === 0 && item.payload.length >= 12) {
          const p = item.payload;
          this.packets.push({
            channel: item.channel,
            seq: p.readUInt16BE(2),
            timestamp: p.readUInt32BE(4),
            marker: (p[1]! & 0x80) !== 0,
            payloadType: p[1]! & 0x7f,
            ssrc: p.readUInt32BE(8),
            firstByte: p[12] ?? 0,
            at: performance.now(),
          });
        }
      }
      this.#waiting?.();
    });
  }

  async request(method: string, url: string, headers: Record<string, string> = {}): Promise<RtspResponse> {
    const h = new RtspHeaders({ CSeq: ++this.#cseq, ...(this.#session ? { Session: this.#session } : {}), ...headers });
    this.socket.write(serializeRequest({ method, url, headers: h }));
    return this.#response();
  }

  /** A GET_PARAMETER keep-alive whose answer nobody waits for (it works while not reading). */
  poke(url: string): void {
    if (this.socket.destroyed) return;
    const h = new RtspHeaders({ CSeq: ++this.#cseq, ...(this.#session ? { Session: this.#session } : {}) });
    this.socket.write(serializeRequest({ method: 'GET_PARAMETER', url, headers: h }));
  }

  /** Drops the answers to poke()s. */
  forgetResponses(): void {
    this.#responses = [];
  }

  async #response(): Promise<RtspResponse> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const next = this.#responses.shift();
      if (next) return next;
      if (this.socket.destroyed) throw new Error('connection closed without a response');
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no RTSP response within 15 s')), Math.max(1, deadline - Date.now()));
        const onClose = () => {
          clearTimeout(t);
          reject(new Error('connection closed without a response'));
        };
        this.socket.once('close', onClose);
        this.#waiting = () => {
          clearTimeout(t);
          this.socket.off('close', onClose);
          this.#waiting = undefined;
          resolve();
        };
      });
    }
  }

  /** DESCRIBE, SETUP of every media over TCP, PLAY. Returns the SDP. */
  async play(url: string, headers: Record<string, string> = {}): Promise<string> {
    const d = await this.request('DESCRIBE', url, { Accept: 'application/sdp', ...headers });
    if (d.status !== 200) throw new Error(`DESCRIBE: ${d.status} ${d.reason}`);
    const sdp = d.body.toString();
    const base = d.headers.get('content-base') ?? url + '/';
    const controls = [...sdp.matchAll(/^a=control:(trackID=\d+)\s*$/gm)].map((m) => m[1]!);
    for (const [i, control] of controls.entries()) {
      const s = await this.request('SETUP', base + control, { Transport: `RTP/AVP/TCP;unicast;interleaved=${i * 2}-${i * 2 + 1}`, ...headers });
      if (s.status !== 200) throw new Error(`SETUP: ${s.status} ${s.reason}`);
      this.#session = s.headers.get('session')?.split(';')[0];
      this.channels.push(Number(/interleaved=(\d+)/.exec(s.headers.get('transport') ?? '')?.[1]));
    }
    const p = await this.request('PLAY', base, headers);
    if (p.status !== 200) throw new Error(`PLAY: ${p.status} ${p.reason}`);
    return sdp;
  }

  /** Packets of track `i` (0 = the first media in the SDP). */
  track(i: number): RtpRecord[] {
    const ch = this.channels[i];
    return this.packets.filter((p) => p.channel === ch);
  }

  /** Complete video frames of track `i` (packets with the marker bit) that arrived after `since`. */
  frames(i: number, since = 0): number {
    return this.track(i).filter((p) => p.marker && p.at >= since).length;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
