// The resources of the camrelay process at one moment, and how they differ from the baseline.
import { readdirSync, readFileSync } from 'node:fs';
import type { CamrelayProcess } from '../../test/helpers/camrelay-process.js';
import { openFds } from '../../test/helpers/proc-sockets.js';
import { liveObjects } from './objects.js';
import { memory } from './proc.js';

export interface Snapshot {
  rss: number;
  peak: number;
  fds: number;
  /** Threads of the process (Node's own, libuv's pool, a native library's). */
  threads: number;
  children: number;
  sockets: { tcp: number; udp: number; other: number };
  /** What the fds point to, by kind (see fdKinds). */
  fdKinds: Record<string, number>;
  /** /api/debug/objects without the kinds at 0. */
  objects: Record<string, number>;
}

/** camrelay's live objects, then its resources from /proc (the request's connection already closed). */
export async function snapshot(app: CamrelayProcess): Promise<Snapshot> {
  const objects = await liveObjects(app);
  return { ...memory(app.pid), fds: app.fds(), fdKinds: fdKinds(app.pid), threads: readdirSync(`/proc/${app.pid}/task`).length, children: app.children().length, sockets: app.sockets(), objects };
}

/** What each open fd points to, by kind ('socket', 'pipe', 'anon_inode:[eventfd]', a path…). */
export function fdKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { target } of openFds(pid)) {
    if (target === undefined) continue; // closed while we looked
    const kind = target.replace(/:\[\d+\]$/, '');
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

/** Kinds whose count differs: "+1 pipe, -1 socket". */
export function diffCounts(now: Record<string, number>, base: Record<string, number>): string {
  const keys = [...new Set([...Object.keys(now), ...Object.keys(base)])].sort();
  const parts = keys.map((k) => [k, (now[k] ?? 0) - (base[k] ?? 0)] as const).filter(([, d]) => d !== 0);
  return parts.map(([k, d]) => `${d > 0 ? '+' : ''}${d} ${k}`).join(', ');
}

/** PIDs from `pids` that still run ffmpeg (a leftover child, or an orphan adopted by init). */
export function liveFfmpeg(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ffmpeg');
    } catch {
      return false;
    }
  });
}
