// rtsp-relay, the baseline, as a child process (bench/baseline/server.cjs), installed on first
// use with --ignore-scripts (its ffmpeg-static would download a binary) and pointed at Debian's
// ffmpeg. bench/baseline holds its package files; they are copied beside the clips
// (node_modules/.cache/camrelay-bench/baseline) and installed there, so its node_modules (~7 MB)
// is not in bench/.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { JsonLines } from '../test/helpers/json-lines.js';
import { CACHE } from './clip.js';
import { isAlive } from './proc.js';

const SOURCE_DIR = path.resolve(import.meta.dirname, 'baseline');
export const BASELINE_DIR = path.join(CACHE, 'baseline');
export const FFMPEG = '/usr/bin/ffmpeg';
const FILES = ['package.json', 'package-lock.json', 'server.cjs'];

/** rtsp-relay's installed version; installs it first when the copy lacks it or its lock file changed. */
export function ensureRtspRelay(log: (s: string) => void): string {
  const pkg = path.join(BASELINE_DIR, 'node_modules', 'rtsp-relay', 'package.json');
  const lock = (dir: string) => (existsSync(path.join(dir, 'package-lock.json')) ? readFileSync(path.join(dir, 'package-lock.json'), 'utf8') : '');
  const stale = lock(SOURCE_DIR) !== lock(BASELINE_DIR);
  mkdirSync(BASELINE_DIR, { recursive: true });
  for (const f of FILES) copyFileSync(path.join(SOURCE_DIR, f), path.join(BASELINE_DIR, f));
  if (stale || !existsSync(pkg)) {
    log(`installing rtsp-relay into ${path.relative(path.resolve(import.meta.dirname, '..'), BASELINE_DIR)} (npm ci --ignore-scripts)`);
    execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', BASELINE_DIR], { stdio: 'inherit' });
  }
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

interface ServerEvent {
  event: 'listening' | 'spawn' | 'exit';
  port?: number;
  pid?: number;
  /** Epoch ms (performance.timeOrigin + performance.now() in the server). */
  t?: number;
  cmd?: string;
  code?: number | null;
  signal?: string | null;
}

export class RtspRelay {
  port = 0;
  #out: JsonLines<ServerEvent>;
  #exit: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    this.#exit = new Promise((resolve) => child.once('exit', () => resolve()));
    this.#out = new JsonLines<ServerEvent>(child, 'rtsp-relay');
  }

  get events(): readonly ServerEvent[] {
    return this.#out.lines;
  }

  static async start(cameraUrl: string): Promise<RtspRelay> {
    const child = spawn(process.execPath, [path.join(BASELINE_DIR, 'server.cjs')], {
      cwd: BASELINE_DIR,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, CAMERA_URL: cameraUrl, FFMPEG_BIN: FFMPEG },
    });
    const r = new RtspRelay(child);
    try {
      r.port = (await r.waitEvent((e) => e.event === 'listening', 15000)).port!;
    } catch (e) {
      await r.stop();
      throw e;
    }
    return r;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/stream`;
  }

  /** The ffmpeg processes rtsp-relay started that are still running. */
  ffmpegPids(): number[] {
    const exited = new Set(this.events.filter((e) => e.event === 'exit').map((e) => e.pid));
    return this.events.filter((e) => e.event === 'spawn' && !exited.has(e.pid) && isAlive(e.pid!)).map((e) => e.pid!);
  }

  /** The first matching event from index `from` on, or the next one, within `ms`. */
  waitEvent(match: (e: ServerEvent) => boolean, ms: number, from = 0): Promise<ServerEvent> {
    return this.#out.wait(match, ms, from);
  }

  /** Ends the server (its stdin closes); an ffmpeg it left running is killed by its pid. */
  async stop(): Promise<void> {
    const left = this.ffmpegPids();
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.#exit;
    clearTimeout(t);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}
