// A viewer with a microphone for tests: a werift peer that offers as go2rtc's player does with
// media "microphone" (a sendonly audio m-line first, then recvonly video and audio), or only the
// sendonly microphone line (a talker who does not watch), and sends Opus packets as its mic.
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCRtpTransceiver } from 'werift';
import { request } from './http.js';
import { HttpError, loopbackPeer } from './werift-viewer.js';
import { Signalling } from './signalling.js';

const MIC_CODECS = {
  opus: () => new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 }),
  PCMA: () => new RTCRtpCodecParameters({ mimeType: 'audio/PCMA', clockRate: 8000, channels: 1 }),
};
const H264 = () =>
  new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, rtcpFeedback: [{ type: 'nack' }], parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' });

export class Talker {
  readonly pc: RTCPeerConnection;
  readonly mic: RTCRtpTransceiver;
  /** RTP received on the recvonly lines (when watching). */
  video: RtpPacket[] = [];
  location: string | undefined;
  #seq = 1000;
  #ts = 123456;

  /**
   * `mic`: the codecs offered for the microphone, in order (default Opus only). `sendrecv`: one
   * audio line that both sends the microphone and receives (many clients' default), after video.
   */
  constructor(opts: { watch: boolean; mic?: readonly (keyof typeof MIC_CODECS)[]; sendrecv?: boolean }) {
    this.pc = new RTCPeerConnection({
      ...loopbackPeer(),
      codecs: { audio: (opts.mic ?? ['opus']).map((c) => MIC_CODECS[c]()), video: [H264()] },
    });
    if (opts.sendrecv) this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.mic = this.pc.addTransceiver('audio', { direction: opts.sendrecv ? 'sendrecv' : 'sendonly' });
    if (opts.watch || opts.sendrecv) {
      if (!opts.sendrecv) {
        this.pc.addTransceiver('video', { direction: 'recvonly' });
        this.pc.addTransceiver('audio', { direction: 'recvonly' });
      }
      this.pc.onTrack.subscribe((track) => {
        track.onReceiveRtp.subscribe((rtp) => {
          if (track.kind === 'video') this.video.push(rtp);
        });
      });
    }
  }

  /** POST /api/webrtc (WHEP form); throws HttpError with camrelay's answer on a refusal. */
  async connect(base: string, src: string): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const r = await request(`${base}/api/webrtc?src=${encodeURIComponent(src)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: this.pc.localDescription!.sdp,
    });
    if (r.status >= 300) throw new HttpError(r.status, r.text);
    this.location = typeof r.headers.location === 'string' ? r.headers.location : undefined;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: r.text });
  }

  /**
   * The same over /api/ws as go2rtc's player does it: `webrtc/offer`, then the answer and the
   * server's trickled candidates. Throws with the `error` message's value on a refusal.
   */
  async connectWs(port: number, src: string): Promise<Signalling> {
    const sig = await new Signalling(port, src).open();
    await this.pc.setLocalDescription(await this.pc.createOffer());
    sig.send({ type: 'webrtc/offer', value: this.pc.localDescription!.sdp });
    const first = await sig.next((m) => m.type === 'webrtc/answer' || m.type === 'error', 15000);
    if (first.type === 'error') {
      await sig.close();
      throw new Error(String(first.value));
    }
    await this.pc.setRemoteDescription({ type: 'answer', sdp: String(first.value) });
    let seen = 0;
    const feed = () => {
      for (const m of sig.messages.slice(seen)) {
        if (m.type === 'webrtc/candidate' && typeof m.value === 'string' && m.value) void this.pc.addIceCandidate({ candidate: m.value, sdpMid: '0' }).catch(() => undefined);
      }
      seen = sig.messages.length;
    };
    feed();
    sig.ws.on('message', feed);
    return sig;
  }

  get connected(): boolean {
    return this.pc.connectionState === 'connected';
  }

  /** The codec answered for the microphone ('opus', 'PCMA'). */
  get micCodec(): string | undefined {
    return this.mic.sender.codec?.name;
  }

  /** Sends packets of 20 ms each (`step`: their duration in the codec's clock), paced as a microphone sends them. */
  async speak(packets: readonly Buffer[], step = 960): Promise<void> {
    for (const p of packets) {
      await this.mic.sender.sendRtp(new RtpPacket(new RtpHeader({ sequenceNumber: this.#seq, timestamp: this.#ts >>> 0 }), p));
      this.#seq = (this.#seq + 1) & 0xffff;
      this.#ts += step;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends packets back to back with nothing between them: a flood, not a microphone. */
  async flood(packets: readonly Buffer[], step = 960): Promise<void> {
    for (const p of packets) {
      await this.mic.sender.sendRtp(new RtpPacket(new RtpHeader({ sequenceNumber: this.#seq, timestamp: this.#ts >>> 0 }), p));
      this.#seq = (this.#seq + 1) & 0xffff;
      this.#ts += step;
    }
  }

  async hangUp(base: string): Promise<number> {
    if (!this.location) throw new Error('no session location');
    const r = await request(base + this.location, { method: 'DELETE' });
    await this.close();
    return r.status;
  }

  async close(): Promise<void> {
    await this.pc.close();
  }
}
