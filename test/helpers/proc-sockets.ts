// A process's sockets as Linux shows them: the inodes of its socket fds, and the rows of its
// /proc/<pid>/net tables (tcp, tcp6, udp, udp6) split into fields (field 9 is the inode).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function socketInodes(pid: number | 'self'): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* fd closed while we looked */
    }
  }
  return inodes;
}

export function netRows(pid: number | 'self', table: 'tcp' | 'tcp6' | 'udp' | 'udp6'): string[][] {
  return readFileSync(`/proc/${pid}/net/${table}`, 'utf8')
    .split('\n')
    .slice(1)
    .map((row) => row.trim().split(/\s+/));
}
