// A real RTSP camera for tests: gst-rtsp-server.py (GStreamer's RTSP server through Python GI) as a
// child process. It reports every client connection and request as a JSON line, so tests can
// assert what the camera saw (TEARDOWN, the number of connections, UDP or TCP transport).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const SCRIPT = path.join(import.meta.dirname, 'gst-rtsp-server.py');

/**
 * 'h264-file' serves `file` (H.264 Annex B) in a loop without encoding: the benchmarks' camera;
 * 'h265-file' the same for an H.265 Annex B file (the transcode benchmark's camera).
 */
export type CameraPipeline = 'h264' | 'h264-aac' | 'h264-pcma' | 'h265' | 'h265-aac' | 'h265-pcma' | 'h264-file' | 'h265-file';

export interface GstCameraOptions {
  pipeline?: CameraPipeline;
  /** Default '/cam'. */
  mount?: string;
  auth?: { method: 'basic' | 'digest'; user: string; password: string };
  /** Session timeout the camera announces (s); gst's default is 60. */
  sessionTimeout?: number;
  /** Default 0: a free port chosen by the camera (kept across restart()). */
  port?: number;
  /** For pipelines 'h264-file' and 'h265-file': the Annex B file, and its frame rate (default 25). */
  file?: string;
  fps?: number;
  /**
   * Default 1. With n > 1 the one process serves n cameras of the same pipeline, at mounts
   * `${mount}1` … `${mount}n` (see mountUrl()), each with a media of its own.
   */
  mounts?: number;
}

export interface CameraEvent {
  event: 'ready' | 'connected' | 'request' | 'closed' | 'error';
  client?: number;
  method?: string;
  uri?: string;
  transport?: string;
  remote?: string;
  port?: number;
  message?: string;
}

/** Whether GStreamer has the elements a pipeline needs (x265enc comes from plugins-bad). */
export function cameraCanRun(pipeline: CameraPipeline): boolean {
  const need =
    pipeline === 'h264-pcma' || pipeline === 'h265-pcma'
      ? [pipeline === 'h264-pcma' ? 'x264enc' : 'x265enc', 'alawenc', 'rtppcmapay']
      : pipeline === 'h265'
      ? ['x265enc', 'rtph265pay']
      : pipeline === 'h265-aac'
        ? ['x265enc', 'rtph265pay', 'voaacenc', 'rtpmp4gpay']
      : pipeline === 'h264-aac'
        ? ['x264enc', 'voaacenc', 'rtpmp4gpay']
        : pipeline === 'h264-file'
          ? ['appsrc', 'h264parse', 'rtph264pay']
        : pipeline === 'h265-file'
          ? ['appsrc', 'h265parse', 'rtph265pay']
          : ['x264enc'];
  try {
    for (const e of need) execFileSync('gst-inspect-1.0', ['--exists', e], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export class GstCamera {
  readonly events: CameraEvent[] = [];
  port = 0;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #listeners = new Set<(e: CameraEvent) => void>();
  #stderr = '';

  private constructor(private readonly opts: GstCameraOptions) {
    this.port = opts.port ?? 0;
  }

  static async start(opts: GstCameraOptions = {}): Promise<GstCamera> {
    const cam = new GstCamera(opts);
    await cam.#spawn();
    return cam;
  }

  get mount(): string {
    return this.opts.mount ?? '/cam';
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The camera's URL, with user info when given (percent-encoded here). */
  url(creds?: { user: string; password: string }, suffix = ''): string {
    const ui = creds ? `${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@` : '';
    return `rtsp://${ui}127.0.0.1:${this.port}${this.mount}${suffix}`;
  }

  /** The URL of mount i (1 … mounts) of a camera started with `mounts` > 1. */
  mountUrl(i: number): string {
    const n = this.opts.mounts ?? 1;
    if (n === 1 || !Number.isInteger(i) || i < 1 || i > n) throw new Error(`camera: no mount ${i} (it serves ${n === 1 ? 'one mount, url()' : `1 … ${n}`})`);
    return `rtsp://127.0.0.1:${this.port}${this.mount}${i}`;
  }

  /** Requests the camera saw, optionally of one method. */
  requests(method?: string): CameraEvent[] {
    return this.events.filter((e) => e.event === 'request' && (method === undefined || e.method === method));
  }

  /** Client connections accepted so far. */
  connections(): number {
    return this.events.filter((e) => e.event === 'connected').length;
  }

  /** Client connections not yet closed. */
  openConnections(): number {
    return this.connections() - this.events.filter((e) => e.event === 'closed').length;
  }

  /** An event already seen (from index `from` on) or the next one matching, with a deadline. */
  waitEvent(match: (e: CameraEvent) => boolean, ms = 5000, from = 0): Promise<CameraEvent> {
    const seen = this.events.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#listeners.delete(f);
        reject(new Error(`camera: no matching event within ${ms} ms (last: ${JSON.stringify(this.events.slice(-3))})`));
      }, ms);
      const f = (e: CameraEvent) => {
        if (!match(e)) return;
        clearTimeout(t);
        this.#listeners.delete(f);
        resolve(e);
      };
      this.#listeners.add(f);
    });
  }

  /** SIGSTOP: the camera keeps its sockets open but answers and sends nothing. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** SIGKILL, as a camera losing power: its connections are reset. */
  async kill(): Promise<void> {
    const c = this.#child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await this.#exited;
    c?.stdin?.destroy();
    this.#child = undefined;
  }

  /** Kills the camera (if running) and starts it again on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  /** Ends the camera; safe to call twice. */
  stop(): Promise<void> {
    return this.kill();
  }

  async #spawn(): Promise<void> {
    const o = this.opts;
    const args = [SCRIPT, '--port', String(this.port), '--mount', this.mount, '--pipeline', o.pipeline ?? 'h264'];
    if (o.auth) args.push('--auth', o.auth.method, '--user', o.auth.user, '--password', o.auth.password);
    if (o.sessionTimeout) args.push('--session-timeout', String(o.sessionTimeout));
    if (o.file) args.push('--file', o.file);
    if (o.fps) args.push('--fps', String(o.fps));
    if (o.mounts && o.mounts > 1) args.push('--mounts', String(o.mounts));
    // stdin stays open and unused: the camera exits when it closes, so it never outlives this process.
    const child = spawn('/usr/bin/python3', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr = (this.#stderr + d).slice(-4000)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let e: CameraEvent;
      try {
        e = JSON.parse(line) as CameraEvent;
      } catch {
        return;
      }
      this.events.push(e);
      for (const f of [...this.#listeners]) f(e);
    });
    const from = this.events.length;
    const failed = this.#exited.then(() => {
      throw new Error(`camera exited before it was ready: ${this.#stderr}`);
    });
    try {
      const ready = await Promise.race([this.waitEvent((e) => e.event === 'ready' || e.event === 'error', 15000, from), failed]);
      if (ready.event === 'error') throw new Error(`camera: ${ready.message}`);
      this.port = ready.port!;
    } catch (e) {
      await this.kill();
      throw e;
    } finally {
      failed.catch(() => {});
    }
  }
}
