// What the kernel says about one process: resident memory and CPU time, read from /proc so the
// figures do not depend on the process reporting itself (its own /metrics could lie or stall).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (almost always 100). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** VmRSS (resident now) and VmHWM (the kernel's peak RSS since exec), in bytes. */
export function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${key}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** utime + stime of `pid` (its own threads, not its children), in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  return Number(rest[11]) + Number(rest[12]);
}

/** One core's share per slice of a window, with each slice's wall-clock span (epoch ms). */
export interface CpuWindow {
  share: number;
  slices: number[];
  spans: Array<[number, number]>;
}

/**
 * Share of one core that `pid` used over the next `ms` (0.01 = 1 %), and per `sliceMs` slice, so
 * that a burst (stopping a child, a GC) can be told from a steady background cost. It waits `ms`:
 * this is a measurement window, not synchronisation.
 */
export async function cpuWindow(pid: number, ms: number, sliceMs = 1000): Promise<CpuWindow> {
  const t0 = performance.now();
  const c0 = cpuTicks(pid);
  const slices: number[] = [];
  const spans: Array<[number, number]> = [];
  let last = c0;
  let lastT = t0;
  while (performance.now() - t0 < ms - 1) {
    await new Promise((r) => setTimeout(r, Math.min(sliceMs, ms - (performance.now() - t0))));
    const c = cpuTicks(pid);
    const now = performance.now();
    slices.push((c - last) / CLK_TCK / ((now - lastT) / 1000));
    spans.push([performance.timeOrigin + lastT, performance.timeOrigin + now]);
    last = c;
    lastT = now;
  }
  return { share: (last - c0) / CLK_TCK / ((lastT - t0) / 1000), slices, spans };
}
