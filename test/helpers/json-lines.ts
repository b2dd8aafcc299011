// The JSON lines a child process writes on stdout (camrelay's pino log, rtsp-relay's events),
// kept in order and waited on. Shared by the tests' CamrelayProcess and the benchmarks' Camrelay
// and RtspRelay.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export class JsonLines<L extends object = LogLine> {
  readonly lines: L[] = [];
  /** Called with each line, and with undefined once the output has ended. */
  #listeners = new Set<(l: L | undefined) => void>();
  #ended = false;

  constructor(
    child: ChildProcess,
    /** Names the process in errors. */
    private readonly name = 'camrelay',
  ) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (text) => {
      let l: L;
      try {
        l = JSON.parse(text) as L;
      } catch {
        return;
      }
      this.lines.push(l);
      for (const f of [...this.#listeners]) f(l);
    });
    // Only once its output has ended (not at 'exit', which can come before the last lines are
    // read) can no awaited line come any more.
    rl.once('close', () => {
      this.#ended = true;
      for (const f of [...this.#listeners]) f(undefined);
    });
  }

  /** A matching line already written (from index `from` on), or the next one. */
  wait(match: (l: L) => boolean, ms: number, from = 0): Promise<L> {
    const seen = this.lines.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return this.next(match, ms);
  }

  /** The next matching line written from now on; rejects after `ms` or when the output ends. */
  next(match: (l: L) => boolean, ms: number): Promise<L> {
    if (this.#ended) return Promise.reject(new Error(`${this.name}: its output has ended`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#listeners.delete(f);
        reject(new Error(`${this.name}: no log line matched within ${ms} ms`));
      }, ms);
      const f = (l: L | undefined) => {
        if (l !== undefined && !match(l)) return;
        clearTimeout(t);
        this.#listeners.delete(f);
        if (l === undefined) reject(new Error(`${this.name}: its output ended before a matching log line`));
        else resolve(l);
      };
      this.#listeners.add(f);
    });
  }
}
