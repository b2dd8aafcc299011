// The parent's side of bench/plain-werift-server.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Clip } from './clip.js';

export class PlainWerift {
  port = 0;
  #exit: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    this.#exit = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(clip: Clip): Promise<PlainWerift> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'plain-werift-server.ts'), clip.file, String(clip.fps)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const p = new PlainWerift(child);
    p.port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('plain werift server did not start within 20 s')), 20000);
      child.once('exit', (code) => reject(new Error(`plain werift server exited (${code})`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const e = JSON.parse(line) as { event: string; port: number };
          if (e.event === 'listening') {
            clearTimeout(t);
            resolve(e.port);
          }
        } catch {
          /* not ours */
        }
      });
    }).catch(async (e: unknown) => {
      await p.stop();
      throw e;
    });
    return p;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.#exit;
    clearTimeout(t);
  }
}
