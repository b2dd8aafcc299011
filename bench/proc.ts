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

/**
 * CPU seconds of a process and of its children, or undefined once it is gone. `children` is the
 * CPU of the children it has reaped (cutime + cstime: a snapshot ffmpeg that ran and ended) plus
 * that of its live ones (and of what they reaped): a child counts once, alive or reaped, so the
 * difference of two readings holds every child that ran between them, however short-lived.
 */
export function treeCpuSeconds(pid: number): { self: number; children: number } | undefined {
  const f = statFields(`/proc/${pid}/stat`);
  if (!f) return undefined;
  let children = (Number(f[13]) + Number(f[14])) / CLK_TCK;
  for (const c of childrenOf(pid)) {
    const cf = statFields(`/proc/${c.pid}/stat`);
    if (cf) children += (Number(cf[11]) + Number(cf[12]) + Number(cf[13]) + Number(cf[14])) / CLK_TCK;
  }
  return { self: (Number(f[11]) + Number(f[12])) / CLK_TCK, children };
}

/** The fields of a /proc stat file after the command name (field 3 of proc(5) is index 0). */
function statFields(file: string): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces; fields after its ')' are fixed.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function statCpu(file: string): number | undefined {
  const f = statFields(file);
  return f ? (Number(f[11]) + Number(f[12])) / CLK_TCK : undefined;
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

/** Resident bytes of `pid` by what they hold, from /proc/<pid>/smaps. */
export interface RssParts {
  /** The node executable's pages (code and read-only data, shared with every node process). */
  node: number;
  /** node-datachannel's native addon. */
  addon: number;
  /** Other files mapped (libc, libstdc++, ...). */
  libraries: number;
  /** glibc's main malloc arena ([heap]): Buffers' memory, native allocations of the main thread. */
  mallocHeap: number;
  /** Anonymous mappings: V8's heap, other threads' malloc arenas, stacks. */
  anonymous: number;
}

/** Which part a mapping's pages count in, by the mapping's name (a path, `[heap]`, `[stack]` or none). */
function partOf(name: string): keyof RssParts {
  if (name === '[heap]') return 'mallocHeap';
  if (!name.startsWith('/')) return 'anonymous';
  if (name === process.execPath || name.endsWith('/bin/node')) return 'node';
  return name.includes('datachannel') ? 'addon' : 'libraries';
}

export function rssParts(pid: number): RssParts | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const parts: RssParts = { node: 0, addon: 0, libraries: 0, mallocHeap: 0, anonymous: 0 };
  let part: keyof RssParts = 'anonymous';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      part = partOf(head[1]!);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) parts[part] += Number(rss[1]) * 1024;
  }
  return parts;
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
