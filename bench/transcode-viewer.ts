// The transcode benchmark's H.265-capable viewer: test/helpers/werift-viewer.ts offering only
// H265 (as Chrome 136+ with a hardware decoder does), counting what arrives. node-datachannel's
// bench viewer (bench/ndc-viewer.ts) offers H.264 only; werift is the peer here that can offer H.265.
// It runs in the bench process: its SRTP work is not in any figure the benchmark reports.
import { performance } from 'node:perf_hooks';
import { Viewer } from '../test/helpers/werift-viewer.js';

export interface ReceivedSoFar {
  /** performance.now() of the reading. */
  at: number;
  packets: number;
  bytes: number;
  /** Pictures completed (packets with the marker bit). */
  frames: number;
}

export class H265Viewer {
  readonly #viewer = new Viewer('audio/opus', { video: ['H265'] });
  #packets = 0;
  #bytes = 0;
  #frames = 0;
  #base = '';

  /** Offers to POST /api/webrtc (WHEP form); throws unless the answer takes H.265 for the video. */
  async connect(base: string, src: string): Promise<void> {
    this.#base = base;
    await this.#viewer.connect(base, src, 'sdp', AbortSignal.timeout(15000));
    const answer = this.#viewer.pc.remoteDescription?.sdp ?? '';
    if (!/a=rtpmap:\d+ H265\/90000/.test(answer)) throw new Error(`the answer to an H265-only offer names no H265 payload type:\n${answer}`);
  }

  /** Counts what arrived since the last call (werift keeps every packet: drained here). */
  received(): ReceivedSoFar {
    const got = this.#viewer.video;
    this.#viewer.video = [];
    for (const p of got) {
      this.#packets++;
      this.#bytes += p.payload.length;
      if (p.header.marker) this.#frames++;
    }
    return { at: performance.now(), packets: this.#packets, bytes: this.#bytes, frames: this.#frames };
  }

  /** DELETE on the session, then the local peer. */
  async close(): Promise<void> {
    if (this.#viewer.location) await this.#viewer.hangUp(this.#base).catch(() => this.#viewer.close());
    else await this.#viewer.close();
  }
}
