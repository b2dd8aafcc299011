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
  #lastTs = -1;
  /** performance.now() of the first packet of each recent keyframe (IRAP picture) that arrived, oldest first. */
  readonly #keyframes: number[] = [];

  constructor() {
    // Arrival times, which the packets werift keeps do not carry: for where in the camera's GOP
    // another viewer's offer falls.
    this.#viewer.pc.onTrack.subscribe((track) => {
      if (track.kind !== 'video') return;
      track.onReceiveRtp.subscribe((rtp) => {
        const ts = rtp.header.timestamp;
        if (ts === this.#lastTs) return;
        this.#lastTs = ts;
        if (!startsIrap(rtp.payload)) return;
        this.#keyframes.push(performance.now());
        if (this.#keyframes.length > 16) this.#keyframes.shift();
      });
    });
  }

  /** Offers to POST /api/webrtc (WHEP form); throws unless the answer takes H.265 for the video. */
  async connect(base: string, src: string): Promise<void> {
    this.#base = base;
    await this.#viewer.connect(base, src, 'sdp', AbortSignal.timeout(15000));
    const answer = this.#viewer.pc.remoteDescription?.sdp ?? '';
    if (!/a=rtpmap:\d+ H265\/90000/.test(answer)) throw new Error(`the answer to an H265-only offer names no H265 payload type:\n${answer}`);
  }

  /** When the last keyframe before `t` (a performance.now()) arrived, if one did. */
  keyframeBefore(t: number): number | undefined {
    let last: number | undefined;
    for (const k of this.#keyframes) if (k <= t) last = k;
    return last;
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

/**
 * The first packet of an access unit (RFC 7798) starts an IRAP picture: its parameter sets (VPS,
 * SPS, PPS, alone or in an aggregation packet, as the camera sends them in front of each IDR) or
 * the IRAP slice itself (whole or the start of a fragmentation unit).
 */
function startsIrap(p: Buffer): boolean {
  if (p.length < 3) return false;
  const t = (p[0]! >> 1) & 0x3f;
  if (t === 32 || t === 48) return true;
  if (t === 49) return (p[2]! & 0x80) !== 0 && (p[2]! & 0x3f) >= 16 && (p[2]! & 0x3f) <= 21;
  return t >= 16 && t <= 21;
}
