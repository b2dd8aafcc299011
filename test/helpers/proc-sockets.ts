// A process's sockets as Linux shows them: the inodes of its socket fds, and the rows of its
// /proc/<pid>/net tables (tcp, tcp6, udp, udp6) split into fields (field 9 is the inode).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Every open fd of `pid` with what it points to ('socket:[123]', 'pipe:[45]',
 * 'anon_inode:[eventfd]', a path); `target` is undefined for an fd closed while we looked.
 */
export function openFds(pid: number | 'self'): { fd: string; target: string | undefined }[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return { fd, target: readlinkSync(`/proc/${pid}/fd/${fd}`) };
    } catch {
      return { fd, target: undefined };
    }
  });
}

export function socketInodes(pid: number | 'self'): Set<string> {
  const inodes = new Set<string>();
  for (const { target } of openFds(pid)) {
    const m = target === undefined ? null : /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  return inodes;
}

export function netRows(pid: number | 'self', table: 'tcp' | 'tcp6' | 'udp' | 'udp6'): string[][] {
  return readFileSync(`/proc/${pid}/net/${table}`, 'utf8')
    .split('\n')
    .slice(1)
    .map((row) => row.trim().split(/\s+/));
}

/**
 * What the sockets of `pid` that are neither TCP nor UDP are (unix with its path, netlink, …), so
 * that a test failing on one more of them says which.
 */
export function describeOtherSockets(pid: number): string[] {
  const inodes = socketInodes(pid);
  for (const t of ['tcp', 'tcp6', 'udp', 'udp6'] as const) for (const row of netRows(pid, t)) if (row[9]) inodes.delete(row[9]);
  const kinds: [string, number][] = [['unix', 6], ['netlink', 9], ['raw', 9], ['raw6', 9], ['packet', 8]];
  const out: string[] = [];
  for (const [table, col] of kinds) {
    let rows: string[][];
    try {
      rows = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1).map((r) => r.trim().split(/\s+/));
    } catch {
      continue;
    }
    for (const r of rows) {
      if (r[col] && inodes.delete(r[col])) out.push(`${table}:${r[col]}${table === 'unix' && r[7] ? ` ${r[7]}` : ''}`);
    }
  }
  for (const i of inodes) out.push(`unknown:${i}`);
  return out.sort();
}
