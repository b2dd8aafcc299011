// A signalling client that behaves as go2rtc's own player (www/video-rtc.js, mode
// 'webrtc,mse,hls,mjpeg', as the WebRTC Camera card embeds it) over /api/ws, with a werift peer
// as the browser:
//  - on open: {"type":"mse","value":"<codecs>"} first, then {"type":"webrtc/offer","value":"<sdp>"};
//  - local candidates as {"type":"webrtc/candidate","value":"candidate:…"}, '' at the end;
//  - an error whose value starts with "mse" (the first mode) → {"type":"mjpeg"} (the MJPEG fallback);
//  - an error whose value contains "webrtc/offer" anywhere → pc.close() (and no retry on this socket);
//  - webrtc/answer → setRemoteDescription, webrtc/candidate → addIceCandidate(sdpMid '0');
//  - once WebRTC video plays, onpcvideo weighs it against MSE: WebRTC wins (the WebSocket is
//    closed) unless MSE has more (AAC audio that WebRTC lacks), then the peer is closed instead;
//  - {"type":"mse"} answer → binary messages are the MSE bytes (init segment, then fragments);
//  - `mode` as video-rtc.js's (default 'webrtc,mse,hls,mjpeg'): without webrtc no offer, without mse no mse.
import { WebSocket, type RawData } from 'ws';
import { Viewer } from './werift-viewer.js';
import { waitEvent } from './wait.js';

export interface PlayerMsg {
  type: string;
  value?: unknown;
}

/** What Chromium's MediaSource supports of the player's list (the order video-rtc.js uses). */
export const MSE_CODECS = 'avc1.640029,avc1.64002A,avc1.640033,mp4a.40.2,mp4a.40.5,flac,opus';

export class Go2rtcPlayer {
  readonly viewer = new Viewer();
  readonly ws: WebSocket;
  readonly messages: PlayerMsg[] = [];
  /** Every message the player sent, in order. */
  readonly sent: PlayerMsg[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Set when an error containing "webrtc/offer" made the player close its peer. */
  pcClosedByError: string | undefined;
  /** Set when the player closed the WebSocket because WebRTC plays. */
  wsClosedBecausePlaying = false;
  #watch: NodeJS.Timeout | undefined;
  /** The MSE type camrelay answered, and the binary messages after it. */
  mseType: string | undefined;
  readonly mseData: Buffer[] = [];
  /** Set when MSE won over WebRTC and the player closed its peer. */
  pcClosedForMse = false;
  #answerSdp = '';
  readonly mode: string;

  constructor(port: number, src: string, opts: { mode?: string } = {}) {
    this.mode = opts.mode ?? 'webrtc,mse,hls,mjpeg';
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws?src=${encodeURIComponent(src)}`);
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (d: RawData, binary: boolean) => {
      if (binary) {
        if (this.mseType !== undefined) this.mseData.push(Buffer.isBuffer(d) ? d : Buffer.concat(d as Buffer[]));
        return;
      }
      const msg = JSON.parse(d.toString()) as PlayerMsg;
      this.messages.push(msg);
      void this.#onMessage(msg);
    });
  }

  /** Opens the socket and runs the player's onopen: MSE, then WebRTC. */
  async start(): Promise<this> {
    await waitEvent(this.ws, 'open', 3000);
    if (this.mode.includes('mse')) this.#send({ type: 'mse', value: MSE_CODECS });
    if (!this.mode.includes('webrtc')) return this;
    const sdp = await this.viewer.offerTrickle((c) => this.#send({ type: 'webrtc/candidate', value: c }));
    this.#send({ type: 'webrtc/offer', value: sdp });
    // onpcvideo: WebRTC against MSE, by video-rtc.js's weights.
    this.#watch = setInterval(() => {
      if (this.viewer.video.length > 0 && this.ws.readyState === WebSocket.OPEN) {
        clearInterval(this.#watch);
        const rtc = (this.#answerSdp.includes('H265/90000') ? 0x240 : 0x220) + (sendsAudio(this.#answerSdp) ? 0x102 : 0);
        const t = this.mseType ?? '';
        const mse = (t.includes('hvc1.') ? 0x230 : 0) + (t.includes('avc1.') ? 0x210 : 0) + (t.includes('mp4a.') ? 0x101 : 0);
        if (rtc >= mse) {
          this.wsClosedBecausePlaying = true;
          this.ws.close();
        } else {
          this.pcClosedForMse = true;
          void this.viewer.pc.close();
        }
      }
    }, 20);
    return this;
  }

  #send(m: PlayerMsg): void {
    this.sent.push(m);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  async #onMessage(msg: PlayerMsg): Promise<void> {
    // video-rtc.js calls msg.value.indexOf/includes unchecked: a non-string value throws there.
    if (msg.type === 'error' && typeof msg.value !== 'string') throw new Error(`error message without a string value: ${JSON.stringify(msg)}`);
    switch (msg.type) {
      case 'error': {
        const v = msg.value as string;
        if (v.indexOf('mse') === 0) this.#send({ type: 'mjpeg' });
        if (v.includes('webrtc/offer')) {
          this.pcClosedByError = v;
          await this.viewer.pc.close();
        }
        break;
      }
      case 'mse':
        this.mseType = String(msg.value);
        break;
      case 'webrtc/answer':
        this.#answerSdp = String(msg.value);
        await this.viewer.answer(String(msg.value));
        break;
      case 'webrtc/candidate':
        await this.viewer.addCandidate(String(msg.value)).catch(() => undefined);
        break;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#watch);
    this.ws.close();
    await this.viewer.close();
  }
}

/** Whether an answer sends audio: an m=audio section with a port and neither inactive nor recvonly. */
function sendsAudio(sdp: string): boolean {
  return sdp.split(/\r?\nm=/).some((m) => /^audio [1-9]/.test(m) && !/a=(inactive|recvonly)/.test(m));
}
