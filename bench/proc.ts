// CPU and memory of processes, from /proc: what the kernel charged them, not what they say.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of a process (all its threads), or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  return statCpu(`/proc/${pid}/stat`);
}

/** User + system CPU seconds of one thread of a process, or undefined once it is gone. */
export function threadCpuSeconds(pid: number, tid: number): number | undefined {
  return statCpu(`/proc/${pid}/task/${tid}/stat`);
}

function statCpu(file: string): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces; fields after its ')' are fixed.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Resident set size in bytes (VmRSS), or undefined once the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Direct children of `pid` with their command names. */
export function childrenOf(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(d), comm });
    } catch {
      /* gone while we looked */
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU of a set of processes over a window, as % of one core. The set is read again at the end,
 * so a process that appears during the window (an ffmpeg child) counts from its start; one that
 * ends during it loses its last part (the windows here are chosen so that none does).
 */
export class CpuWindow {
  #t0 = performance.now();
  #start = new Map<number, number>();

  constructor(private readonly pids: () => number[]) {
    for (const p of pids()) {
      const s = cpuSeconds(p);
      if (s !== undefined) this.#start.set(p, s);
    }
  }

  /** % of one core since construction, and the window's length in seconds. */
  read(): { percent: number; seconds: number } {
    const seconds = (performance.now() - this.#t0) / 1000;
    let used = 0;
    for (const p of this.pids()) {
      const s = cpuSeconds(p);
      if (s !== undefined) used += s - (this.#start.get(p) ?? 0);
    }
    return { percent: (100 * used) / seconds, seconds };
  }
}
