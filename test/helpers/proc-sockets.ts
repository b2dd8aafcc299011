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
