// What a soak run is asked to do, and the defaults `npm run soak` and the short test start from.
import { testWebRtcBackend } from '../../test/helpers/camrelay-process.js';

export interface SoakOptions {
  webrtc: number;
  rtsp: number;
  /** MSE cycles (bench/soak/mse-cycles.ts), after the WebRTC and RTSP ones; 0 = none. */
  mse: number;
  /** HLS cycles (bench/soak/hls-cycles.ts), after the MSE ones; 0 = none. */
  hls: number;
  /** The checkpoint whose RSS the final RSS is compared with (cycles of each kind). */
  reference: number;
  /** A checkpoint row every this many cycles (of each kind) after the reference. */
  every: number;
  connectTimeout: string;
  disconnectTimeout: string;
  /** webrtc.backend in camrelay's config. */
  backend: string;
  /** WebRTC cycles whose server-side end is still awaited while the next cycles run. */
  maxTails: number;
  /**
   * One clean WebRTC cycle and one RTSP cycle before the baseline. node-datachannel starts its
   * thread pool (5 threads, 2 pipes) with the first peer and keeps it until camrelay exits: a
   * one-time cost, not a per-cycle one, which the baseline should include.
   */
  warmup: boolean;
  /**
   * Preload bench/soak/gc-hook.cjs into camrelay and force a full GC at each checkpoint, to read
   * the live JS heap and an RSS that does not depend on when V8 last collected.
   */
  gc: boolean;
  /** The CPU window after the last viewer left. */
  idleCpuMs: number;
  /** The run stops after this many failed cycles: something is broken, more cycles add nothing. */
  maxFailures: number;
  progress?: (line: string) => void;
}

export const DEFAULTS: Omit<SoakOptions, 'webrtc' | 'rtsp'> = {
  reference: 50,
  every: 100,
  connectTimeout: '1.5s',
  disconnectTimeout: '1s',
  backend: testWebRtcBackend(),
  maxTails: 3,
  warmup: true,
  gc: true,
  idleCpuMs: 5000,
  maxFailures: 10,
  mse: 0,
  hls: 0,
};
