// What every benchmark of `npm run bench` gets: the options, the clip, the camera, where to log.
import type { GstCamera } from '../test/helpers/gst-camera.js';
import type { Backend } from './camrelay.js';
import type { Clip } from './clip.js';

export interface BackendChoice {
  /** How tables name it. */
  label: string;
  /** Written to webrtc.backend; undefined = camrelay's default (no key in the config). */
  backend?: Backend;
}

export interface BenchContext {
  quick: boolean;
  backends: BackendChoice[];
  clip: Clip;
  /** The gst-rtsp-server camera serving the clip (one for the whole run). */
  camera: GstCamera;
  /** The command line that produced the figures, for the report. */
  command: string;
  log(line: string): void;
  /** Figures one benchmark leaves for another (the baseline's ratios). */
  shared: Map<string, unknown>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** n digits after the point, '–' for NaN/undefined. */
export function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

export const MiB = 2 ** 20;
