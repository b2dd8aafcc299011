// A real WebRTC viewer for tests: a werift peer that offers recvonly H.264 (or H.265, or both, as
// Chrome 136+ does) + audio on loopback and records every RTP packet it receives.
import { RTCPeerConnection, RTCRtpCodecParameters, type RtpPacket } from 'werift';
import { request } from './http.js';

const H264_FMTP = 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f';
/** What Chrome 136+ offers for H.265 Main with a hardware decoder (level 3.1 here; it varies per machine). */
export const H265_FMTP = 'level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST';

/**
 * A werift peer on 127.0.0.1 only, with no STUN server (DESIGN.md, werift gotchas). werift's
 * default bundle policy leaks the unbundled transport's UDP socket, hence max-bundle.
 */
export function loopbackPeer(): { bundlePolicy: 'max-bundle'; iceServers: []; iceUseIpv4: false; iceUseIpv6: false; iceAdditionalHostAddresses: string[] } {
  return { bundlePolicy: 'max-bundle', iceServers: [], iceUseIpv4: false, iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'] };
}

export interface ViewerOptions {
  /** The video codecs offered, in this order (default: H.264 only). */
  video?: readonly ('H264' | 'H265')[];
}

const VIDEO_CODECS = {
  H264: () => new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }], parameters: H264_FMTP }),
  H265: () => new RTCRtpCodecParameters({ mimeType: 'video/H265', clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }], parameters: H265_FMTP }),
};

export class Viewer {
  readonly pc: RTCPeerConnection;
  video: RtpPacket[] = [];
  audio: RtpPacket[] = [];
  /** Where DELETE ends the session (WHEP-style answers). */
  location: string | undefined;
  private gathering: Promise<void> = Promise.resolve();

  constructor(audioMime: 'audio/opus' | 'audio/PCMA' | 'audio/PCMU' | 'audio/G722' = 'audio/opus', opts: ViewerOptions = {}) {
    const opus = audioMime === 'audio/opus';
    this.pc = new RTCPeerConnection({
      ...loopbackPeer(),
      codecs: {
        video: (opts.video ?? ['H264']).map((c) => VIDEO_CODECS[c]()),
        audio: [new RTCRtpCodecParameters({ mimeType: audioMime, clockRate: opus ? 48000 : 8000, channels: opus ? 2 : 1 })],
      },
    });
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    this.pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => (track.kind === 'video' ? this.video : this.audio).push(rtp));
    });
  }

  async offer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    return this.pc.localDescription!.sdp;
  }

  /**
   * Trickle ICE as a browser does it: the offer comes back before gathering (without candidates),
   * and each local candidate line ("candidate:…") goes to `onCandidate` as it is found, '' once
   * gathering is done (go2rtc's player sends '' too).
   */
  async offerTrickle(onCandidate: (candidate: string) => void): Promise<string> {
    const offer = await this.pc.createOffer();
    this.pc.onIceCandidate.subscribe((c) => onCandidate(c?.candidate ?? ''));
    // werift gathers inside setLocalDescription; close() waits for it (sockets it binds late leak).
    this.gathering = this.pc.setLocalDescription(offer).then(
      () => undefined,
      () => undefined,
    );
    return offer.sdp;
  }

  /** A remote candidate line from trickle signalling, for the first m-line (bundled). */
  addCandidate(candidate: string): Promise<void> {
    return this.pc.addIceCandidate({ candidate, sdpMid: '0' });
  }

  answer(sdp: string): Promise<void> {
    return this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  /** Offers to camrelay's POST /api/webrtc (JSON form) and applies the answer. Throws on an HTTP error. */
  async connect(base: string, src: string, form: 'json' | 'sdp' = 'json', signal?: AbortSignal): Promise<void> {
    const offer = await this.offer();
    const r = await request(`${base}/api/webrtc?src=${encodeURIComponent(src)}`, {
      method: 'POST',
      headers: { 'Content-Type': form === 'json' ? 'application/json' : 'application/sdp' },
      body: form === 'json' ? JSON.stringify({ type: 'offer', sdp: offer }) : offer,
      signal,
    });
    if (r.status >= 300) throw new HttpError(r.status, r.text);
    let sdp = r.text;
    if (form === 'json') sdp = (JSON.parse(r.text) as { sdp: string }).sdp;
    else this.location = typeof r.headers.location === 'string' ? r.headers.location : undefined;
    await this.answer(sdp);
  }

  /** Ends the session the WHEP way (DELETE on the Location), then closes the local peer. */
  async hangUp(base: string): Promise<number> {
    if (!this.location) throw new Error('no session location: connect with form "sdp"');
    const r = await request(base + this.location, { method: 'DELETE' });
    await this.close();
    return r.status;
  }

  /** A keyframe arrived whole: SPS, PPS and an IDR slice under one timestamp. */
  sawKeyframeWithParams(): boolean {
    const byTs = new Map<number, Set<number>>();
    for (const p of this.video) {
      const t = p.payload[0]! & 0x1f;
      const types = t === 28 ? [p.payload[1]! & 0x1f] : t === 24 ? stapTypes(p.payload) : [t];
      let s = byTs.get(p.header.timestamp);
      if (!s) byTs.set(p.header.timestamp, (s = new Set()));
      for (const x of types) s.add(x);
    }
    return [...byTs.values()].some((s) => s.has(7) && s.has(8) && s.has(5));
  }

  async close(): Promise<void> {
    await this.gathering;
    await this.pc.close();
  }
}

function stapTypes(p: Buffer): number[] {
  const out: number[] = [];
  for (let i = 1; i + 2 < p.length; ) {
    const size = p.readUInt16BE(i);
    out.push(p[i + 2]! & 0x1f);
    i += 2 + size;
  }
  return out;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body}`);
  }
}
