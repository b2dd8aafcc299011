// tcpdump as the benchmarks run it: a capture on loopback written to a pcap file, timestamps taken
// by the kernel (nanoseconds), headers only. start() resolves once tcpdump says it is listening,
// so that nothing sent afterwards is missed. stop() first makes sure everything sent so far is in
// the file, then ends tcpdump with SIGINT (a user's ^C) and reads its counters.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sleep } from './context.js';
import { cpuSeconds } from './proc.js';

const TCPDUMP = '/usr/bin/tcpdump';
export const CACHE_DIR = path.resolve(import.meta.dirname, '.cache');

export interface CaptureStats {
  captured?: number;
  received?: number;
  /** "packets dropped by kernel": the capture buffer was full. */
  dropped?: number;
  /** The end-of-capture sentinel reached the file: nothing sent before stop() is missing from it. */
  complete: boolean;
  /** tcpdump's CPU time over the capture, per second of it: what it took from a 2-core machine. */
  cpuShare?: number;
}

/** Running captures: killed if the bench exits without stopping them (an error, ^C). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Why a capture cannot run here, or undefined when tcpdump is there and we may capture. */
export function captureProblem(): string | undefined {
  const bin = tcpdumpPath();
  if (!bin) return 'tcpdump is not installed (apt-get install tcpdump)';
  if (process.getuid?.() !== 0) return 'capturing needs root (the bench does not run as root)';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return `${bin} --version failed: ${(r.stderr || String(r.error)).trim().split('\n')[0]}`;
  return undefined;
}

function tcpdumpPath(): string | undefined {
  if (existsSync(TCPDUMP)) return TCPDUMP;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(path.join(dir, 'tcpdump'))) return path.join(dir, 'tcpdump');
  return undefined;
}

export class Capture {
  #stderr = '';
  #started = performance.now();
  #sentinelOpen = true;
  #exit: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    /** The pcap file (removed by remove()). */
    readonly file: string,
    /** Sends the sentinel datagram to itself, through the capture. */
    private readonly sentinel: Socket,
    private readonly token: Buffer,
  ) {
    live.add(child);
    this.#exit = new Promise((resolve) => {
      child.once('exit', (code) => {
        live.delete(child);
        resolve(code);
      });
      // A spawn that failed (ENOENT, EACCES) may never emit 'exit'.
      child.once('error', () => {
        live.delete(child);
        resolve(null);
      });
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr = (this.#stderr + d).slice(-8000)));
  }

  /** Starts `tcpdump -i lo` with a capture filter; resolves once it is listening. */
  static async start(name: string, filter: string, snapLength = 128, timeoutMs = 10000): Promise<Capture> {
    const bin = tcpdumpPath();
    if (!bin) throw new Error('tcpdump is not installed');
    mkdirSync(CACHE_DIR, { recursive: true });
    // .pcap: the name AppArmor's tcpdump profile lets it write outside the home directory.
    const file = path.join(CACHE_DIR, `${name}-${process.pid}.pcap`);
    rmSync(file, { force: true });
    const sentinel = createSocket('udp4');
    await new Promise<void>((resolve) => sentinel.bind(0, '127.0.0.1', resolve));
    const args = [
      '-i', 'lo',
      '-n',
      // 64 MiB of kernel buffer (in KiB): 10 viewers at 4 Mbit/s are ~4500 packets/s.
      '-B', '65536',
      '-U',
      '-s', String(snapLength),
      '--time-stamp-precision=nano',
      '-w', file,
      `(${filter}) or (udp dst port ${sentinel.address().port})`,
    ];
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const c = new Capture(child, file, sentinel, Buffer.from(`camrelay-bench-end-${randomBytes(8).toString('hex')}`));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`tcpdump did not say it is listening within ${timeoutMs} ms`)), timeoutMs);
        const onData = () => {
          if (!/listening on/.test(c.#stderr)) return;
          clearTimeout(t);
          child.stderr!.off('data', onData);
          resolve();
        };
        child.stderr!.on('data', onData);
        child.once('error', (e) => {
          clearTimeout(t);
          reject(e);
        });
        child.once('exit', (code, sig) => {
          clearTimeout(t);
          reject(new Error(`tcpdump exited (${code ?? sig})`));
        });
      });
    } catch (e) {
      await c.kill();
      c.remove();
      throw new Error(`${(e as Error).message}: ${c.#stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    return c;
  }

  /**
   * Waits until the file holds everything captured so far, then SIGINT and waits for tcpdump to
   * exit (SIGKILL after `ms`); its counters. libpcap hands packets over in blocks, a block when it
   * is full or after tcpdump's 1 s timeout, and tcpdump on SIGINT writes no partial block: the
   * last second would be lost. So a sentinel datagram goes through the capture, and stop() waits
   * for it in the file: whatever was sent before it is in the file too.
   */
  async stop(ms = 10000): Promise<CaptureStats> {
    const complete = await this.#flush(ms);
    const cpu = this.child.pid === undefined ? undefined : cpuSeconds(this.child.pid);
    const cpuShare = cpu === undefined ? undefined : cpu / ((performance.now() - this.#started) / 1000);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.#exit;
    clearTimeout(t);
    this.#closeSentinel();
    const count = (what: string) => {
      const m = new RegExp(`(\\d+) packets? ${what}`).exec(this.#stderr);
      return m ? Number(m[1]) : undefined;
    };
    return { captured: count('captured'), received: count('received by filter'), dropped: count('dropped by kernel'), complete, cpuShare };
  }

  async #flush(ms: number): Promise<boolean> {
    const port = this.sentinel.address().port;
    // First byte 0x80: it looks like RTP to the relay's filter too; its SSRC is nobody's.
    const datagram = Buffer.concat([Buffer.from([0x80, 0x00]), this.token]);
    const deadline = Date.now() + ms;
    let from = 0;
    for (let i = 0; Date.now() < deadline && i < 1000; i++) {
      // Sent again now and then: one lost (a full capture buffer) must not cost the whole wait.
      if (i % 10 === 0) this.sentinel.send(datagram, port, '127.0.0.1');
      await sleep(100);
      const found = this.#fileHas(from);
      if (found.has) return true;
      from = found.next;
      if (this.child.exitCode !== null || this.child.signalCode !== null) return false;
    }
    return false;
  }

  /** Whether the token is in the file from byte `from` on; where to look next time. */
  #fileHas(from: number): { has: boolean; next: number } {
    let fd: number | undefined;
    try {
      fd = openSync(this.file, 'r');
      const size = fstatSync(fd).size;
      const start = Math.max(0, from - this.token.length);
      const buf = Buffer.alloc(size - start);
      readSync(fd, buf, 0, buf.length, start);
      return { has: buf.includes(this.token), next: size };
    } catch {
      return { has: false, next: from };
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** For a finally: ends tcpdump at once if it still runs. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.#exit;
    this.#closeSentinel();
  }

  #closeSentinel(): void {
    if (!this.#sentinelOpen) return;
    this.#sentinelOpen = false;
    this.sentinel.close();
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}
