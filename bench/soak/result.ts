// What a soak run found: one row per checkpoint, the tallies of the cycles, the verdicts.
import type { Snapshot } from './snapshot.js';
import type { Criterion } from './criteria.js';
import type { KindStats } from './tally.js';
import type { SoakOptions } from './options.js';

export interface Row {
  webrtc: number;
  rtsp: number;
  /** Set on the row read after the MSE or the HLS cycles: which, and how many ran. */
  phase?: { kind: 'mse' | 'hls'; cycles: number };
  elapsedS: number;
  /** RSS the moment the row's last cycle ended (every row is read in that same state). */
  rss: number;
  /** Lowest and highest RSS sampled (every 250 ms) while the row's cycles ran. */
  rssMin: number;
  rssMax: number;
  /**
   * With options.gc: RSS right after a full GC forced after the idle window, the JS heap still in
   * use then, the heap V8 keeps committed, and external memory (Buffers).
   */
  rssGc?: number;
  /** rssGc without the heap V8 keeps committed but empty (heapTotal - heapLive): what a leak, JS or native, would raise. */
  rssNet?: number;
  heapLive?: number;
  heapTotal?: number;
  external?: number;
  peak: number;
  fds: number;
  threads: number;
  children: number;
  tcp: number;
  udp: number;
  /** Unix sockets (Node's own). */
  otherSockets: number;
  /** '= baseline' or what differs from it. */
  objects: string;
  /** fd kinds that differ from the baseline ('' = none). */
  fdDiff: string;
  /** ffmpeg starts since the baseline: how often the stream went from idle to live. */
  sourceStarts: number;
  /** camrelay's CPU (share of one core) while the row's cycles ran. */
  cpu: number;
  /** camrelay's CPU in the idle window (options.idleCpuMs) after the row's last viewer left. */
  idleCpu: number;
  failures: number;
}

export interface SoakResult {
  options: SoakOptions;
  baseline: Snapshot;
  /** What the warm-up left that the process did not have at startup ('' = nothing, undefined = no warm-up). */
  warmupAdded?: string;
  /** The WebRTC library camrelay ran, from its 'webrtc backend' log line. */
  webrtcBackend: string;
  rows: Row[];
  /** RSS at the very end, after the idle CPU window and the wait for the baseline. */
  rssAtRest: number;
  /** Share of one core in the idleCpuMs after the last viewer left, and second by second. */
  idleCpu: number;
  idleCpuSlices: number[];
  /** Slices left out of idleCpu: V8 ran a major GC of its own in them (bench/soak/idle-window.ts). */
  idleCpuLeftOut: number[];
  criteria: Criterion[];
  pass: boolean;
  failures: string[];
  kinds: Record<string, KindStats>;
  /** MSE and HLS cycles by kind (mse:cold, mse:warm, hls), apart from the WebRTC and RTSP ones. */
  outputKinds: Record<string, KindStats>;
  /** First fragment after the socket's creation, ms, of the MSE cycles: p50, p95 by kind. */
  mseFirstFragment: Record<string, { p50: number; p95: number }>;
  webrtcReasons: Record<string, number>;
  rtspReasons: Record<string, number>;
  wsDrop: { abortedBeforeAnswer: number; answeredFirst: number };
  /** ffmpeg PIDs camrelay started that still run at the end. */
  leftoverFfmpeg: number[];
  durationS: number;
  stoppedEarly: boolean;
}
