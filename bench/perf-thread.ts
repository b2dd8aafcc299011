// Where one thread of a process spends its CPU, by Linux perf (software clock samples with call
// chains): V8's --cpu-prof sees JavaScript only and lumps a native call in with its caller, so it
// cannot tell SRTP from the kernel's UDP path inside one send. Each sample is put in one bucket by
// what its call chain holds, first match wins (BUCKETS). Needs root (or a low
// perf_event_paranoid) and a kernel that gives perf a cpu-clock: perfProblem() says why not.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PERF = '/usr/bin/perf';

export interface ThreadBreakdown {
  /** CPU time sampled, in ms, and the samples it is made of. */
  cpuMs: number;
  samples: number;
  buckets: { name: string; ms: number; percent: number }[];
}

interface Frame {
  sym: string;
  dso: string;
}

/** The buckets in the order they are tried; the last takes whatever no other claims. */
const BUCKETS: { name: string; test: (chain: Frame[]) => boolean }[] = [
  {
    // On loopback the receiving side's softirq (IP, UDP, waking the viewer's thread) runs inside
    // the sender's syscall; a network card would take the packet from here instead.
    name: 'UDP send: loopback delivery to the viewer (kernel, in the sender\'s syscall)',
    test: (c) => has(c, /sendto|sendmsg/) && has(c, /net_rx_action|process_backlog|netif_receive_skb|ip_rcv|udp_rcv/),
  },
  { name: 'UDP send: preempted at the end of the syscall', test: (c) => has(c, /sendto|sendmsg/) && has(c, /^schedule$|finish_task_switch/) },
  { name: 'UDP send: socket, UDP and IP output (kernel)', test: (c) => has(c, /sendto|sendmsg/) },
  { name: 'libdatachannel: SRTP, RTCP handlers, copies, locks', test: (c) => c.some((f) => f.dso.includes('node_datachannel')) },
  { name: 'V8 garbage collection', test: (c) => has(c, /v8::internal::(Heap|Scavenger|MarkCompact|Sweeper|ConcurrentMarking|MinorMarkCompact|IncrementalMarking)/) },
  { name: 'V8 compiling', test: (c) => has(c, /v8::internal::(compiler|baseline|Compiler)|maglev/) },
  { name: 'waiting for events (epoll, scheduler)', test: (c) => has(c, /epoll_wait|epoll_pwait|finish_task_switch/) },
  { name: 'other syscalls (socket reads, logging, timers)', test: (c) => c[0]?.dso === '[kernel.kallsyms]' },
  { name: 'JavaScript, Node and V8 runtime', test: () => true },
];

function has(chain: Frame[], re: RegExp): boolean {
  return chain.some((f) => re.test(f.sym));
}

/** Why perf cannot sample here, or undefined when it can. */
export function perfProblem(): string | undefined {
  if (!existsSync(PERF)) return `${PERF} is not installed (apt-get install linux-perf)`;
  if (process.getuid?.() !== 0) return 'sampling another process needs root (the bench does not run as root)';
  const r = spawnSync(PERF, ['stat', '-e', 'cpu-clock', '--', 'true'], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) return `perf stat -e cpu-clock failed: ${(r.stderr || String(r.error)).trim().split('\n')[0]}`;
  return undefined;
}

/** Samples thread `tid` for `seconds` into `file` (perf.data), with call chains. */
export function recordThread(tid: number, seconds: number, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(PERF, ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-g', '-t', String(tid), '-o', file, '--', 'sleep', String(seconds)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    const kill = setTimeout(() => p.kill('SIGKILL'), (seconds + 30) * 1000);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(kill);
      if (code === 0) resolve();
      else reject(new Error(`perf record exited with ${code}: ${err.trim().split('\n').slice(-2).join(' ')}`));
    });
  });
}

/** Reads a recording of one thread into buckets. */
export function breakdown(file: string): ThreadBreakdown {
  const r = spawnSync(PERF, ['script', '-i', file, '-F', 'period,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 512 * 2 ** 20, timeout: 120000 });
  if (r.status !== 0) throw new Error(`perf script failed: ${(r.stderr || String(r.error)).trim().split('\n')[0]}`);
  const ns = new Map<string, number>();
  let total = 0;
  let samples = 0;
  for (const block of r.stdout.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim());
    const period = Number(lines[0]?.trim());
    if (!Number.isFinite(period) || period <= 0) continue;
    const chain = lines.slice(1).map(parseFrame);
    const name = BUCKETS.find((b) => b.test(chain))!.name;
    ns.set(name, (ns.get(name) ?? 0) + period);
    total += period;
    samples++;
  }
  return {
    cpuMs: total / 1e6,
    samples,
    buckets: BUCKETS.filter((b) => ns.has(b.name)).map((b) => ({ name: b.name, ms: ns.get(b.name)! / 1e6, percent: (100 * ns.get(b.name)!) / total })),
  };
}

/** "\t    7f70 symbol+0x1 (/path/dso)" → its symbol and dso. */
function parseFrame(line: string): Frame {
  const m = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^)]*)\)\s*$/.exec(line);
  if (!m) return { sym: line.trim(), dso: '' };
  return { sym: m[1]!.replace(/\+0x[0-9a-f]+$/, ''), dso: m[2]! };
}
