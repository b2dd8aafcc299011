// A signalling client that behaves as go2rtc's own player (www/video-rtc.js, mode
// 'webrtc,mse,hls,mjpeg', as the WebRTC Camera card embeds it) over /api/ws, with a werift peer
// as the browser:
//  - on open: {"type":"mse","value":"<codecs>"} first, then {"type":"webrtc/offer","value":"<sdp>"};
//  - local candidates as {"type":"webrtc/candidate","value":"candidate:…"}, '' at the end;
//  - an error whose value starts with "mse" (the first mode) → {"type":"mjpeg"} (the MJPEG fallback);
//  - an error whose value contains "webrtc/offer" anywhere → pc.close() (and no retry on this socket);
//  - webrtc/answer → setRemoteDescription, webrtc/candidate → addIceCandidate(sdpMid '0');
//  - once WebRTC video plays, the WebSocket is closed (video-rtc.js onpcvideo → ws.close()).
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

  constructor(port: number, src: string) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws?src=${encodeURIComponent(src)}`);
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (d: RawData, binary: boolean) => {
      if (binary) return; // MJPEG frames would come as binary; camrelay does not serve them yet
      const msg = JSON.parse(d.toString()) as PlayerMsg;
      this.messages.push(msg);
      void this.#onMessage(msg);
    });
  }

  /** Opens the socket and runs the player's onopen: MSE, then WebRTC. */
  async start(): Promise<this> {
    await waitEvent(this.ws, 'open', 3000);
    this.#send({ type: 'mse', value: MSE_CODECS });
    const sdp = await this.viewer.offerTrickle((c) => this.#send({ type: 'webrtc/candidate', value: c }));
    this.#send({ type: 'webrtc/offer', value: sdp });
    // onpcvideo: WebRTC wins over MSE (no MSE answer came) → the socket is closed.
    this.#watch = setInterval(() => {
      if (this.viewer.video.length > 0 && this.ws.readyState === WebSocket.OPEN) {
        this.wsClosedBecausePlaying = true;
        clearInterval(this.#watch);
        this.ws.close();
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
      case 'webrtc/answer':
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
