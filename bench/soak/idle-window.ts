import type { CpuWindow } from './proc.js';

// The idle-CPU criterion asks whether work is left running once the last viewer has gone. V8's
// memory reducer answers a burst of allocations (the HLS phase above all) with up to three major
// GCs a few seconds after it ends: 50-120 ms of CPU in one or two seconds, once, and nothing
// after. That is not work left running, and with a 1 % limit over 5 s it decides the verdict.

/** At most this many seconds of a window are left out; a steady cost shows in the others. */
export const MAX_LEFT_OUT = 2;
/** A major GC's incremental marking runs on the main and helper threads before its final pause. */
const MARKING_BEFORE_MS = 250;

export interface IdleWindow {
  share: number;
  slices: number[];
  /** Indexes of the slices left out: V8 began a major GC of its own in each. */
  leftOut: number[];
}

/**
 * The window's share with the slices in which V8 ran a major GC by itself left out (`gcs`: its
 * start in epoch ms and its length, from bench/soak/gc-hook.cjs), unless that would leave out more than MAX_LEFT_OUT or
 * every slice: then the whole window counts.
 */
export function withoutOwnGcs(w: CpuWindow, gcs: Array<{ at: number; ms: number }>): IdleWindow {
  const leftOut = w.spans.flatMap(([from, to], i) => (gcs.some((g) => g.at - MARKING_BEFORE_MS < to && g.at + g.ms >= from) ? [i] : []));
  if (leftOut.length === 0 || leftOut.length > MAX_LEFT_OUT || leftOut.length === w.slices.length) return { share: w.share, slices: w.slices, leftOut: [] };
  const kept = w.slices.filter((_, i) => !leftOut.includes(i));
  return { share: kept.reduce((a, b) => a + b, 0) / kept.length, slices: w.slices, leftOut };
}
