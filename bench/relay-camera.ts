// An RTSP camera inside the bench process, so that the time each frame leaves the camera and the
// time it reaches a viewer are read from one clock. It plays the clip at its frame rate over
// RTSP/TCP (interleaved), each frame's RTP packets in one write, and notes when each frame was
// written, under a key taken from the frame's own bytes (which camrelay relays unchanged).
import { performance } from 'node:perf_hooks';
import type net from 'node:net';
import { ScriptedCamera } from '../test/helpers/scripted-camera.js';
import type { AccessUnit, Clip } from './clip.js';

const MTU_PAYLOAD = 1400;
const SSRC = 0x1234abcd;

/** Identifies a frame by the first bytes of its first slice, after the NAL header. */
export function frameKey(sliceBody: Buffer): string {
  return sliceBody.toString('latin1', 0, Math.min(24, sliceBody.length));
}

export interface SentFrame {
  /** performance.now() when the frame's last byte was handed to the socket. */
  at: number;
  keyframe: boolean;
  /** The RTP timestamp the camera gave it. */
  ts: number;
}

export class RelayCamera {
  /** Key → the frame's write (the latest, should the clip's loop repeat a key). */
  readonly sent = new Map<string, SentFrame>();
  frames = 0;
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly server: ScriptedCamera,
    private readonly aus: AccessUnit[],
    private readonly clip: Clip,
  ) {}

  static async start(clip: Clip, aus: AccessUnit[]): Promise<RelayCamera> {
    const server = await ScriptedCamera.start();
    const cam = new RelayCamera(server, aus, clip);
    const first = aus[0]!;
    const sps = first.nals.find((n) => (n[0]! & 0x1f) === 7);
    const pps = first.nals.find((n) => (n[0]! & 0x1f) === 8);
    if (!sps || !pps) throw new Error('the clip does not start with SPS and PPS');
    const sdp = [
      'v=0',
      'o=- 0 0 IN IP4 127.0.0.1',
      's=bench',
      't=0 0',
      'm=video 0 RTP/AVP 96',
      'a=rtpmap:96 H264/90000',
      `a=fmtp:96 packetization-mode=1;profile-level-id=${sps.subarray(1, 4).toString('hex')};sprop-parameter-sets=${sps.toString('base64')},${pps.toString('base64')}`,
      'a=control:track1',
      '',
    ].join('\r\n');
    server.use({
      DESCRIBE: (x) => x.reply(200, { 'Content-Type': 'application/sdp', 'Content-Base': server.url() + '/' }, sdp),
      PLAY: (x) => {
        x.reply(200, { Session: '12345678' });
        cam.#play(x.socket);
      },
      TEARDOWN: (x) => {
        cam.#stop();
        x.reply(200, { Session: '12345678' });
      },
    });
    return cam;
  }

  url(): string {
    return this.server.url();
  }

  #play(socket: net.Socket): void {
    this.#stop();
    const t0 = performance.now();
    const frameMs = 1000 / this.clip.fps;
    let n = 0;
    let seq = 0;
    socket.once('close', () => this.#stop());
    const tick = () => {
      if (socket.destroyed) return;
      const au = this.aus[n % this.aus.length]!;
      const ts = (n * Math.round(90000 / this.clip.fps)) >>> 0;
      const chunks: Buffer[] = [];
      const packets = packetize(au.nals);
      packets.forEach((payload, i) => {
        const rtp = Buffer.alloc(12);
        rtp[0] = 0x80;
        rtp[1] = 96 | (i === packets.length - 1 ? 0x80 : 0);
        rtp.writeUInt16BE(seq++ & 0xffff, 2);
        rtp.writeUInt32BE(ts, 4);
        rtp.writeUInt32BE(SSRC, 8);
        const head = Buffer.from([0x24, 0, 0, 0]);
        head.writeUInt16BE(12 + payload.length, 2);
        chunks.push(head, rtp, payload);
      });
      const bytes = Buffer.concat(chunks);
      socket.write(bytes);
      const sent: SentFrame = { at: performance.now(), keyframe: au.keyframe, ts };
      const slice = au.nals.find((x) => (x[0]! & 0x1f) === 1 || (x[0]! & 0x1f) === 5);
      if (slice) this.sent.set(frameKey(slice.subarray(1)), sent);
      this.frames++;
      n++;
      // The schedule is from t0: a late timer never makes the camera drift.
      this.#timer = setTimeout(tick, Math.max(0, t0 + n * frameMs - performance.now()));
    };
    tick();
  }

  #stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async close(): Promise<void> {
    this.#stop();
    await this.server.close();
  }
}

/** RFC 6184 single NAL unit packets and FU-A, nothing aggregated: how most cameras send. */
function packetize(nals: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const nal of nals) {
    if (nal.length <= MTU_PAYLOAD) {
      out.push(nal);
      continue;
    }
    const header = nal[0]!;
    for (let off = 1; off < nal.length; off += MTU_PAYLOAD - 2) {
      const end = Math.min(nal.length, off + MTU_PAYLOAD - 2);
      const fu = Buffer.from([(header & 0xe0) | 28, (header & 0x1f) | (off === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0)]);
      out.push(Buffer.concat([fu, nal.subarray(off, end)]));
    }
  }
  return out;
}
