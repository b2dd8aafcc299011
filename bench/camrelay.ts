// camrelay as the benchmarks run it: `node main.js` of the bundle (what `npm start` runs), a
// child process of its own, on a config written to a temporary directory. Its JSON log lines are
// kept with the time they were written (pino's `time`), so events inside camrelay can be timed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from '../test/helpers/http.js';
import { JsonLines, type LogLine as BaseLogLine } from '../test/helpers/json-lines.js';
import { ensureBundle, ROOT, startEnv, startFlags, TREE } from './bundle.js';

export type Backend = 'werift' | 'node-datachannel';

export interface LogLine extends BaseLogLine {
  /** pino's time of writing (ms since the epoch). */
  time: number;
}

export interface CamrelayOptions {
  streams: Record<string, string>;
  /** Sets webrtc.backend; left out of the config when undefined (camrelay's default). */
  backend?: Backend;
  logLevel?: 'debug' | 'info';
  /** Runs camrelay under `node --cpu-prof`, writing its profile into this directory at exit. */
  cpuProfDir?: string;
}

/** A UDP port free right now on 127.0.0.1 (for webrtc.listen, which a shared-port backend binds). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export function benchConfig(o: CamrelayOptions, udpPort: number): string {
  const streams = Object.entries(o.streams).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `api: { listen: "127.0.0.1:0" }
rtsp: { listen: "127.0.0.1:0" }
webrtc:
  listen: "127.0.0.1:${udpPort}"
  loopback_only: true
  # The viewers send no RTCP; liveness must not end a measurement.
  timeouts: { connect: 15s, disconnect: 600s }
${o.backend ? `  backend: ${o.backend}\n` : ''}log: { level: ${o.logLevel ?? 'info'} }
streams:
${streams.join('\n')}
`;
}

/** Running camrelay children: killed if the bench exits without stopping them (an error, ^C). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export class Camrelay {
  port = 0;
  readonly #log: JsonLines<LogLine>;
  #exit: Promise<number | null>;
  #stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly config: string,
  ) {
    live.add(child);
    this.#exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.once('exit', () => live.delete(child));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr = (this.#stderr + d).slice(-4000)));
    this.#log = new JsonLines<LogLine>(child);
  }

  /** Every log line so far, in order. */
  get logs(): LogLine[] {
    return this.#log.lines;
  }

  static async start(o: CamrelayOptions): Promise<Camrelay> {
    const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-bench-'));
    const config = benchConfig(o, await freeUdpPort());
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, config);
    const prof = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
    // A profiled run takes src/ through tsx, so that its samples name source files and lines.
    const entry = o.cpuProfDir ? ['--import', 'tsx', path.join(TREE, 'src/main.ts')] : [path.join(ensureBundle(), 'main.js')];
    const child = spawn(process.execPath, [...startFlags(), ...prof, ...entry, '--config', file], {
      cwd: ROOT,
      env: { ...process.env, ...startEnv() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const c = new Camrelay(child, dir, config);
    try {
      const ready = await c.waitLog((l) => l.msg === 'api listening', 20000);
      c.port = Number(String(ready.listen).split(':').pop());
      await c.waitLog((l) => l.msg === 'camrelay ready', 10000);
    } catch (e) {
      await c.stop();
      throw new Error(`camrelay did not start: ${(e as Error).message}\n${c.#stderr}`);
    }
    return c;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The WebRTC backend camrelay says it runs, from its startup log, when it says so. */
  backendInLog(): string | undefined {
    for (const l of this.logs) {
      const b = l.backend ?? l.webrtc_backend;
      if (typeof b === 'string') return b;
    }
    return undefined;
  }

  /**
   * What camrelay said about trouble since log index `from`: warnings, errors, and why WebRTC
   * sessions closed, for the message of a failed run.
   */
  problemsSince(from: number, max = 6): string {
    const lines = this.logs
      .slice(from)
      .filter((l) => l.level >= 40 || l.msg === 'webrtc session closed' || l.msg === 'source failed' || l.msg === 'webrtc connection state')
      .slice(-max)
      .map((l) => `${l.msg}${l.reason ? `: ${String(l.reason)}` : ''}${l.err ? `: ${String(l.err)}` : ''}${l.state ? ` ${String(l.state)}` : ''}`);
    return lines.length ? `camrelay said: ${lines.join(' | ')}` : 'camrelay logged nothing about it';
  }

  /** A matching line already logged (from index `from` on), or the next one, within `ms`. */
  waitLog(match: (l: LogLine) => boolean, ms: number, from = 0): Promise<LogLine> {
    return this.#log.wait(match, ms, from);
  }

  async get<T>(urlPath: string): Promise<T> {
    const r = await request(this.base + urlPath, { timeoutMs: 10000 });
    if (r.status !== 200) throw new Error(`GET ${urlPath}: HTTP ${r.status}`);
    return JSON.parse(r.text) as T;
  }

  async metrics(): Promise<string> {
    return (await request(`${this.base}/metrics`, { timeoutMs: 10000 })).text;
  }

  /** SIGTERM, SIGKILL after `ms`; removes the config directory. */
  async stop(ms = 10000): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.#exit;
    clearTimeout(t);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A metric's value from Prometheus text (first sample whose name and labels start with `name`). */
export function metricValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) return v;
    }
  }
  return undefined;
}
