// The bench's side of bench/mse-viewer-process.ts: starts it and asks it things over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export type MseRequest = { id: number } & (
  | { cmd: 'open'; url: string; count: number; timeoutMs: number }
  | { cmd: 'join'; url: string; timeoutMs: number }
  | { cmd: 'stats' }
  | { cmd: 'closeAll' }
  | { cmd: 'exit' }
);

/** Bytes each viewer has read so far; `at` is the process's performance.now(). */
export interface MseStats {
  at: number;
  bytes: number[];
  open: number;
}

type Body<C> = C extends unknown ? Omit<C, 'id'> : never;

export class MseViewers {
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
      else p.reject(new Error(`mse viewer process: ${m.error}`));
    });
    child.once('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`mse viewer process exited (${code})`));
      this.#pending.clear();
    });
  }

  static async start(): Promise<MseViewers> {
    const child = fork(path.join(import.meta.dirname, 'mse-viewer-process.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const vp = new MseViewers(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('mse viewer process did not start within 20 s')), 20000);
      child.once('message', () => {
        clearTimeout(t);
        resolve();
      });
      child.once('exit', (code) => reject(new Error(`mse viewer process exited (${code})`)));
    });
    return vp;
  }

  get pid(): number {
    return this.child.pid!;
  }

  ask<T>(req: Body<MseRequest>, ms = 120000): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`mse viewer process: no answer to ${req.cmd} within ${ms} ms`));
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
    if (this.child.exitCode === null && this.child.signalCode === null) await this.ask({ cmd: 'exit' }, 10000).catch(() => this.child.kill('SIGKILL'));
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(t);
  }
}
