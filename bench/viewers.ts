// The bench's side of bench/viewer-process.ts: starts it and asks it things over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export type ViewerRequest = { id: number } & (
  | { cmd: 'openWebrtc'; base: string; src: string; count: number; timeoutMs: number }
  | { cmd: 'openWs'; url: string; count: number; timeoutMs: number }
  | { cmd: 'stats' }
  | { cmd: 'closeAll'; base?: string }
  | { cmd: 'exit' }
);

/** Counters of every viewer of the process, WebRTC ones first; `at` is the process's performance.now(). */
export interface ViewerStats {
  at: number;
  packets: number[];
  bytes: number[];
  /** WebRTC viewers only. */
  frames: number[];
  lost: number[];
  open: number;
  /** WebRTC connection attempts repeated (see connectViewer). */
  retries: number;
}

/** What the viewers received between two readings of their counters. */
export interface Received {
  /** Per viewer, in the order of ViewerStats (frames: WebRTC viewers only). */
  pktPerSec: number[];
  fps: number[];
  mbitPerSec: number[];
  /** Over all viewers. */
  packets: number;
  bytes: number;
  lost: number;
  seconds: number;
}

export function receivedBetween(a: ViewerStats, z: ViewerStats): Received {
  const seconds = (z.at - a.at) / 1000;
  const delta = (zs: number[], as: number[]) => zs.map((x, i) => x - as[i]!);
  const sum = (xs: number[]) => xs.reduce((acc, x) => acc + x, 0);
  const packets = delta(z.packets, a.packets);
  const bytes = delta(z.bytes, a.bytes);
  return {
    pktPerSec: packets.map((p) => p / seconds),
    fps: delta(z.frames, a.frames).map((f) => f / seconds),
    mbitPerSec: bytes.map((b) => (b * 8) / seconds / 1e6),
    packets: sum(packets),
    bytes: sum(bytes),
    lost: sum(delta(z.lost, a.lost)),
    seconds,
  };
}

type Body<C> = C extends unknown ? Omit<C, 'id'> : never;

export class ViewerProcess {
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #exited: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`viewer process: ${m.error}`));
    });
    child.once('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`viewer process exited (${code})`));
      this.#pending.clear();
    });
  }

  static async start(): Promise<ViewerProcess> {
    const child = fork(path.join(import.meta.dirname, 'viewer-process.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const vp = new ViewerProcess(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('viewer process did not start within 20 s')), 20000);
      child.once('message', () => {
        clearTimeout(t);
        resolve();
      });
      child.once('exit', (code) => reject(new Error(`viewer process exited (${code})`)));
    });
    return vp;
  }

  get pid(): number {
    return this.child.pid!;
  }

  ask<T>(req: Body<ViewerRequest>, ms = 120000): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`viewer process: no answer to ${req.cmd} within ${ms} ms`));
      }, ms);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.child.send({ ...req, id });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await this.ask({ cmd: 'exit' }, 10000).catch(() => this.child.kill('SIGKILL'));
    }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(t);
  }
}
