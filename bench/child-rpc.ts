// A benchmark's helper process (viewers kept apart from camrelay and from the bench's own event
// loop), asked things over IPC: each request carries an id, the child answers
// {id, ok, result | error}; its first message says it is ready.
import { fork, type ChildProcess } from 'node:child_process';

/** A request without its id, for each member of a union of requests. */
export type Body<C> = C extends unknown ? Omit<C, 'id'> : never;

export class ChildRpc<Req extends { id: number; cmd: string }> {
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #exited: Promise<void>;
  readonly child: ChildProcess;

  /** Forks `script` through tsx; `label` names it in errors ("viewer process"). */
  protected constructor(
    script: string,
    private readonly label: string,
  ) {
    const child = fork(script, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${label}: ${m.error}`));
    });
    child.once('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${label} exited (${code})`));
      this.#pending.clear();
    });
  }

  /** Resolves on the child's first message (it is listening), within 20 s. */
  protected ready(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.label} did not start within 20 s`)), 20000);
      this.child.once('message', () => {
        clearTimeout(t);
        resolve();
      });
      this.child.once('exit', (code) => reject(new Error(`${this.label} exited (${code})`)));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  ask<T>(req: Body<Req>, ms = 120000): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.label}: no answer to ${req.cmd} within ${ms} ms`));
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
      await this.ask({ cmd: 'exit' } as Body<Req>, 10000).catch(() => this.child.kill('SIGKILL'));
    }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(t);
  }
}
