// The parent's side of the plain senders (bench/plain-werift-server.ts, bench/plain-ndc-server.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { request } from '../test/helpers/http.js';
import { JsonLines } from '../test/helpers/json-lines.js';
import type { Clip } from './clip.js';

/** The plain sender of each library, as a script under bench/. */
const SCRIPTS = { werift: 'plain-werift-server.ts', 'node-datachannel': 'plain-ndc-server.ts' } as const;

export class PlainSender {
  port = 0;
  #exit: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    this.#exit = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** `extra`: arguments after the clip and its frame rate (plain-ndc-server.ts: its UDP port). */
  static async start(lib: keyof typeof SCRIPTS, clip: Clip, extra: string[] = []): Promise<PlainSender> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, SCRIPTS[lib]), clip.file, String(clip.fps), ...extra], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const p = new PlainSender(child);
    try {
      const out = new JsonLines<{ event?: string; port?: number }>(child, `plain ${lib} server`);
      p.port = (await out.wait((e) => e.event === 'listening', 20000)).port!;
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Node's metrics of the sender, in camrelay's format (reading them resets the lag histogram). */
  async metrics(): Promise<string> {
    return (await request(`${this.base}/metrics`, { timeoutMs: 10000 })).text;
  }

  async stop(): Promise<void> {
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.#exit;
    clearTimeout(t);
  }
}
