// Headless Chromium as a WebRTC viewer of camrelay whose UDP goes through a UdpRelay: the offer
// leaves without candidates and the answer names only the relay, so every datagram camrelay
// receives from this viewer is seen (and can be stalled) by the relay.
import type { Page } from 'playwright-core';
import { Chromium } from './chromium.js';
import { request } from './http.js';
import { UdpRelay, answerViaRelay, withoutCandidates } from './udp-relay.js';

export class ChromiumRelayViewer {
  private constructor(
    readonly browser: Chromium,
    readonly page: Page,
    readonly relay: UdpRelay,
  ) {}

  /** Launches Chromium and plays `src` from camrelay's POST /api/webrtc. */
  static async play(base: string, src: string): Promise<ChromiumRelayViewer> {
    const browser = await Chromium.launch();
    const relay = await UdpRelay.start();
    try {
      const page = await browser.page();
      await page.setContent('<video id="v" autoplay muted playsinline></video>');
      const offer = await page.evaluate(async () => {
        const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
        (window as unknown as { pc: RTCPeerConnection }).pc = pc;
        pc.addTransceiver('video', { direction: 'recvonly' });
        pc.addTransceiver('audio', { direction: 'recvonly' });
        pc.ontrack = (e) => {
          const v = document.getElementById('v') as HTMLVideoElement;
          if (!v.srcObject) v.srcObject = e.streams[0] ?? new MediaStream([e.track]);
        };
        await pc.setLocalDescription(await pc.createOffer());
        return pc.localDescription!.sdp;
      });
      const r = await request(`${base}/api/webrtc?src=${encodeURIComponent(src)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'offer', sdp: withoutCandidates(offer) }),
      });
      if (r.status !== 200) throw new Error(`POST /api/webrtc: ${r.status} ${r.text}`);
      const { sdp, target } = answerViaRelay((JSON.parse(r.text) as { sdp: string }).sdp, relay.port);
      relay.target = target;
      await page.evaluate(async (answer) => {
        await (window as unknown as { pc: RTCPeerConnection }).pc.setRemoteDescription({ type: 'answer', sdp: answer });
      }, sdp);
      return new ChromiumRelayViewer(browser, page, relay);
    } catch (e) {
      relay.close();
      await browser.close();
      throw e;
    }
  }

  /** The <video>'s width once frames are decoded (0 before). */
  videoWidth(): Promise<number> {
    return this.page.evaluate(() => (document.getElementById('v') as HTMLVideoElement).videoWidth);
  }

  /** Video frames decoded so far (from getStats). */
  framesDecoded(): Promise<number> {
    return this.page.evaluate(async () => {
      const stats = await (window as unknown as { pc: RTCPeerConnection }).pc.getStats();
      let n = 0;
      stats.forEach((s: { type: string; kind?: string; framesDecoded?: number }) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') n = s.framesDecoded ?? 0;
      });
      return n;
    });
  }

  async close(): Promise<void> {
    this.relay.close();
    await this.browser.close();
  }
}
