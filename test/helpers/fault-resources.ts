// What a fault test compares before and after: camrelay's live objects, children, sockets and
// fds; the TCP connections it holds to a given peer; and every child it ever spawned (read from
// its own 'child started' log lines, by pid, never by name).
import assert from 'node:assert/strict';
import { CamrelayProcess, nonZero } from './camrelay-process.js';
import { waitFor } from './wait.js';
import { netRows, openFds, socketInodes } from './proc-sockets.js';

// camrelay opens some fds once, with its first viewer, and keeps them: a pipe pair (both WebRTC
// backends) and, with node-datachannel, one more socket of the native library. Not a leak (the
// 50-viewer test and the soak see no growth). Sockets and children are compared exactly; fds with
// this slack.
const FD_SLACK = 3;

export interface Baseline {
  children: number;
  sockets: { tcp: number; udp: number; other: number };
  objects: Record<string, number>;
  fds: number;
  /** fd=target of each, to name what a difference is. */
  fdList: string[];
}

export async function baseline(app: CamrelayProcess): Promise<Baseline> {
  return { children: app.children().length, sockets: app.sockets(), objects: nonZero(await app.objects()), fds: app.fds(), fdList: fdTargets(app.pid) };
}

/** Waits (up to `ms`) for children, sockets, live objects and fds to be back at the baseline, then asserts each. */
export async function assertBaseline(app: CamrelayProcess, base: Baseline, what: string, ms = 5000): Promise<void> {
  const same = async () =>
    app.children().length === base.children &&
    JSON.stringify(app.sockets()) === JSON.stringify(base.sockets) &&
    JSON.stringify(nonZero(await app.objects())) === JSON.stringify(base.objects) &&
    Math.abs(app.fds() - base.fds) <= FD_SLACK;
  await waitFor(`${what}: back to baseline`, same, ms).catch(() => undefined);
  assert.equal(app.children().length, base.children, `${what}: children`);
  assert.deepEqual(app.sockets(), base.sockets, `${what}: sockets`);
  assert.deepEqual(nonZero(await app.objects()), base.objects, `${what}: live objects`);
  const fds = app.fds();
  const now = fdTargets(app.pid);
  const added = now.filter((f) => !base.fdList.includes(f));
  const gone = base.fdList.filter((f) => !now.includes(f));
  assert.ok(Math.abs(fds - base.fds) <= FD_SLACK, `${what}: open fds ${fds} vs baseline ${base.fds}; new: ${added.join(' ')}; gone: ${gone.join(' ')}`);
}

/** PIDs of every child camrelay started so far, in order (its debug log names each). */
export function spawnedPids(app: CamrelayProcess): number[] {
  return app.logs.filter((l) => l.msg === 'child started' && typeof l.pid === 'number').map((l) => l.pid as number);
}

/** Whether a pid is a live process (a zombie counts: nobody reaped it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every child camrelay ever started has exited and been reaped: none left running, none orphaned. */
export async function assertNoOrphans(app: CamrelayProcess, what: string, ms = 3000): Promise<void> {
  const pids = spawnedPids(app);
  await waitFor(`${what}: every child gone`, () => pids.every((p) => !alive(p)), ms).catch(() => undefined);
  assert.deepEqual(pids.filter(alive), [], `${what}: children still alive (pids ${pids.join(', ')})`);
}

/**
 * The children's lifetimes in log order: throws when a second child started before the previous
 * one's exit was logged (camrelay logs both from one thread, so the order is the real one).
 */
export function assertOneChildAtATime(app: CamrelayProcess, from = 0): number {
  const live = new Set<number>();
  let peak = 0;
  for (const l of app.logs.slice(from)) {
    if (typeof l.pid !== 'number') continue;
    if (l.msg === 'child started') live.add(l.pid);
    else if (l.msg === 'child exited') live.delete(l.pid);
    peak = Math.max(peak, live.size);
  }
  assert.ok(peak <= 1, `at most one child at a time (peak ${peak})`);
  return peak;
}

/** What each open fd of `pid` is (pipe:[…], socket:[…], anon_inode:[eventfd], a path). */
export function fdTargets(pid: number): string[] {
  return openFds(pid).map(({ fd, target }) => `${fd}=${target ?? '?'}`);
}

export interface TcpConn {
  localPort: number;
  remotePort: number;
  /** /proc/net/tcp's state: 01 ESTABLISHED, 0A LISTEN, 06 TIME_WAIT, … */
  state: string;
}

/** The TCP (IPv4) sockets `pid` holds open, from its fds matched against /proc/<pid>/net/tcp. */
export function tcpConnections(pid: number): TcpConn[] {
  const inodes = socketInodes(pid);
  const out: TcpConn[] = [];
  for (const f of netRows(pid, 'tcp')) {
    if (f.length < 10 || !inodes.has(f[9]!)) continue;
    const port = (addr: string) => parseInt(addr.split(':')[1]!, 16);
    out.push({ localPort: port(f[1]!), remotePort: port(f[2]!), state: f[3]! });
  }
  return out;
}

/** camrelay's open TCP connections to a loopback port. */
export function connectionsTo(pid: number, port: number): TcpConn[] {
  return tcpConnections(pid).filter((c) => c.remotePort === port);
}
