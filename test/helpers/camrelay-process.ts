// Runs camrelay as a real child process on a temporary config, as a user would, and reads its
// resources (children, fds, sockets) from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { request } from './http.js';
import { JsonLines, type LogLine } from './json-lines.js';
import { netRows, openFds, socketInodes } from './proc-sockets.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export type { LogLine };

export interface StartOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Run the bundle built into this directory (scripts/build.mjs) instead of src/ through tsx. */
  bundle?: string;
  /** Flags for node itself (before the script). */
  nodeFlags?: string[];
}

export class CamrelayProcess {
  readonly #log: JsonLines;
  port = 0;
  /** The RTSP server's port, from its "RTSP server listening" log line. */
  rtspPort = 0;
  private exitCode: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    private readonly opts: StartOptions,
  ) {
    this.exitCode = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.#log = new JsonLines(child);
  }

  /** Every log line so far, in order. */
  get logs(): LogLine[] {
    return this.#log.lines;
  }

  /** Starts camrelay on `yaml` (api.listen and rtsp.listen are set to free loopback ports). */
  static async start(yaml: string, opts: StartOptions = {}): Promise<CamrelayProcess> {
    const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-test-'));
    writeFileSync(path.join(dir, 'config.yaml'), yaml);
    return CamrelayProcess.#startIn(dir, opts);
  }

  get configFile(): string {
    return path.join(this.dir, 'config.yaml');
  }

  /** Stops this process (SIGTERM) and starts a new one on the same config file. */
  async restart(): Promise<CamrelayProcess> {
    await this.stop(10000, { keepDir: true });
    return CamrelayProcess.#startIn(this.dir, { bundle: this.opts.bundle, nodeFlags: this.opts.nodeFlags, env: this.opts.env });
  }

  static async #startIn(dir: string, opts: StartOptions): Promise<CamrelayProcess> {
    const child = spawn(process.execPath, camrelayArgs(path.join(dir, 'config.yaml'), opts), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    const p = new CamrelayProcess(child, dir, opts);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const ready = await p.waitLog((l) => l.msg === 'api listening', opts.timeoutMs ?? 15000);
      p.port = Number(String(ready.listen).split(':').pop());
      const rtsp = await p.waitLog((l) => l.msg === 'RTSP server listening', 1000);
      p.rtspPort = Number(String(rtsp.address).split(':').pop());
      await p.waitLog((l) => l.msg === 'camrelay ready', 5000);
    } catch (e) {
      child.kill('SIGKILL');
      throw new Error(`camrelay did not start: ${(e as Error).message}\n${stderr}`);
    }
    return p;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A matching line already logged (from index `from` on), or the next one. */
  waitLog(match: (l: LogLine) => boolean, ms = 5000, from = 0): Promise<LogLine> {
    return this.#log.wait(match, ms, from);
  }

  /** The next matching line logged from now on. */
  nextLog(match: (l: LogLine) => boolean, ms = 5000): Promise<LogLine> {
    return this.#log.next(match, ms);
  }

  async json<T = unknown>(urlPath: string, init: Parameters<typeof request>[1] = {}): Promise<{ status: number; body: T }> {
    const r = await request(this.base + urlPath, init);
    return { status: r.status, body: (r.text ? JSON.parse(r.text) : undefined) as T };
  }

  /** PIDs of camrelay's direct children (ffmpeg), leaving out tsx's esbuild helper. */
  children(): number[] {
    try {
      return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(this.pid)], { encoding: 'utf8' })
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter(([, comm]) => comm !== undefined && comm !== 'esbuild')
        .map(([pid]) => Number(pid))
        .filter((n) => n > 0);
    } catch {
      return []; // ps exits 1 when there is none
    }
  }

  fds(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  /** What each open fd is ('pipe:[…]', 'socket:[…]', 'anon_inode:[eventfd]', a path), sorted. */
  fdTargets(): string[] {
    return openFds(this.pid)
      .map(({ target }) => target?.replace(/\[\d+\]$/, '') ?? '(closed while listed)')
      .sort();
  }

  /** Open sockets by protocol, from the process's fds matched against /proc/<pid>/net tables. */
  sockets(): { tcp: number; udp: number; other: number } {
    const inodes = socketInodes(this.pid);
    const count = (tables: ('tcp' | 'tcp6' | 'udp' | 'udp6')[]) => {
      let n = 0;
      for (const t of tables) {
        for (const f of netRows(this.pid, t)) {
          const inode = f[9];
          if (inode && inodes.delete(inode)) n++;
        }
      }
      return n;
    };
    const tcp = count(['tcp', 'tcp6']);
    const udp = count(['udp', 'udp6']);
    return { tcp, udp, other: inodes.size };
  }

  async objects(): Promise<Record<string, number>> {
    return (await this.json<Record<string, number>>('/api/debug/objects')).body;
  }

  /** SIGTERM and wait for the exit code; SIGKILL after `ms`. */
  async stop(ms = 10000, opts: { keepDir?: boolean } = {}): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const code = await this.exitCode;
    clearTimeout(t);
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}

/** Live-object counts without the classes at zero, to compare two moments. */
export const nonZero = (o: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(o).filter(([, n]) => n !== 0));

/** The WebRTC backend test camrelays run: CAMRELAY_TEST_WEBRTC_BACKEND (test/backends/*), else auto. */
export const testWebRtcBackend = (): string => process.env.CAMRELAY_TEST_WEBRTC_BACKEND ?? 'auto';

/** node's arguments to run camrelay on `configFile` (debug log), from src/ or a bundle. */
export function camrelayArgs(configFile: string, opts: Pick<StartOptions, 'bundle' | 'nodeFlags'> = {}): string[] {
  const entry = opts.bundle ? [path.join(opts.bundle, 'main.js')] : ['--import', 'tsx', path.join(ROOT, 'src/main.ts')];
  return [...(opts.nodeFlags ?? []), ...entry, '--config', configFile, '--log-level', 'debug'];
}

/**
 * A config for tests: loopback only, free ports (webrtc.listen's shared UDP port too: port 0),
 * short timeouts, the WebRTC backend of testWebRtcBackend(). `rtsp` adds settings to the rtsp
 * block (flow-mapping text, e.g. 'session_timeout: 3s').
 */
export function testConfig(streams: Record<string, string>, extra = '', rtsp = ''): string {
  const lines = Object.entries(streams).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `api: { listen: "127.0.0.1:0" }
rtsp: { listen: "127.0.0.1:0"${rtsp ? `, ${rtsp}` : ''} }
webrtc:
  listen: "127.0.0.1:0"
  backend: ${testWebRtcBackend()}
  loopback_only: true
  timeouts: { connect: 3s, disconnect: 2s }
ffmpeg:
  stop_grace: { quit: 200ms, term: 300ms }
${extra}
streams:
${lines.join('\n')}
`;
}
