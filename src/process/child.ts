import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { Owned } from '../core/owned.js';
import { errorMessage } from '../core/errors.js';
import { log, maskCredentials, type Logger } from '../core/log.js';
import { idlePrefix } from './idle-priority.js';

/** ms to wait after each stop step before the next, harsher one. */
export interface StopGrace {
  quit: number;
  term: number;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: Error;
}

export interface ChildOptions {
  bin: string;
  args: string[];
  /** Names the process in logs and messages ("ffmpeg demo"). */
  label: string;
  grace: StopGrace;
  /** How many stderr lines to keep for error messages (default 20). */
  stderrLines?: number;
  /** 'pipe' when the caller reads the output (an MJPEG or snapshot encoder); default 'ignore'. */
  stdout?: 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
  /**
   * Niceness for work that may wait (snapshot decoders): on a small box a burst of them must not
   * take the cores from camrelay's own event loop and the streams' children. Set before the child
   * reads its input, so the threads it starts later inherit it.
   */
  nice?: number;
  /** Also run it under SCHED_IDLE where the system allows (see idle-priority.ts). */
  idle?: boolean;
}

// A line longer than this is cut: a child printing without newlines must not grow our memory.
const MAX_LINE = 4096;
// After the process exited, how long its pipes may stay open (held by a process that left the
// group) before we stop waiting for their last bytes and destroy them.
const PIPE_DRAIN_MS = 1000;

/**
 * One child process (DESIGN.md rule 4). It leads its own process group, so stopping reaches
 * whatever it spawned: `q` on stdin (ffmpeg's own clean stop), then SIGTERM to the group after
 * grace.quit, then SIGKILL after grace.term. `done` settles only once the process really exited
 * and its pipes are gone. Events: 'stderr' (line); 'exit' (code, signal, error?) exactly once, also
 * for a process that could not be spawned (then code and signal are null and error says why).
 * A process that exits by itself still has to be close()d by its owner; that is cheap then.
 */
export class ChildProcessOwner extends Owned {
  readonly label: string;
  readonly exited: Promise<ChildExit>;
  /** Undefined when spawn itself threw (an argument with a NUL byte, say). */
  #child: ChildProcess | undefined;
  #grace: StopGrace;
  #ring: string[] = [];
  #ringSize: number;
  #partial = '';
  #exit: ChildExit | undefined;
  #settle!: (e: ChildExit) => void;
  #timers = new Set<NodeJS.Timeout>();
  #log: Logger;

  constructor(opts: ChildOptions) {
    super('ChildProcess');
    this.label = opts.label;
    this.#grace = opts.grace;
    this.#ringSize = opts.stderrLines ?? 20;
    this.exited = new Promise((resolve) => (this.#settle = resolve));
    let child: ChildProcess;
    const idle = opts.idle ? idlePrefix() : [];
    try {
      child = spawn(idle[0] ?? opts.bin, idle.length > 0 ? [...idle.slice(1), opts.bin, ...opts.args] : opts.args, {
        detached: true,
        stdio: ['pipe', opts.stdout ?? 'ignore', 'pipe'],
        ...(opts.env && { env: opts.env }),
      });
    } catch (e) {
      // spawn throws for arguments it cannot pass (a NUL byte): the same outcome as a spawn that
      // fails with 'error' (ENOENT), so this object is counted and closed like any other.
      this.#log = log.child({ child: opts.label });
      const why = maskCredentials(e instanceof Error ? e.message : String(e));
      this.#exit = { code: null, signal: null, error: new Error(`could not start ${this.label} (${opts.bin}): ${why}`) };
      // After the constructor returned, so the owner's 'exit' listeners are there.
      process.nextTick(() => this.#finish());
      return;
    }
    this.#child = child;
    this.#log = log.child({ child: opts.label, pid: this.#child.pid });
    if (opts.nice !== undefined && child.pid !== undefined) {
      try {
        setPriority(child.pid, opts.nice);
      } catch (e) {
        // Raising niceness is always allowed; a process already gone (ESRCH) needs nothing.
        this.#log.debug({ err: errorMessage(e) }, 'could not lower the child\'s priority');
      }
    }
    this.#log.debug({ cmd: maskCredentials([opts.bin, ...opts.args].join(' ')) }, 'child started');
    // Writing `q` to a process that already exited or never reads stdin gives EPIPE: expected.
    this.#child.stdin?.on('error', () => {});
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stderr?.on('data', (chunk: string) => this.#onStderr(chunk));
    this.#child.on('error', (err) => this.#onError(err));
    this.#child.on('exit', (code, signal) => this.#onExit(code, signal));
    this.#child.on('close', () => this.#finish());
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The child's stdin: for feeding media to ffmpeg; `q` is written here on close. */
  get stdin(): Writable | null {
    return this.#child?.stdin ?? null;
  }

  /** The child's stdout when opts.stdout was 'pipe'. */
  get stdout(): Readable | null {
    return this.#child?.stdout ?? null;
  }

  /** The last stderr lines, oldest first. */
  lastStderr(): string[] {
    return this.#partial ? [...this.#ring, this.#partial] : [...this.#ring];
  }

  /** "ffmpeg demo exited with code 1: <last stderr line>", for source errors. */
  describeExit(e: ChildExit): string {
    if (e.error) return e.error.message;
    const how = e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
    const last = this.lastStderr().at(-1);
    return `${this.label} ${how}` + (last ? `: ${maskCredentials(last)}` : '');
  }

  #onStderr(chunk: string): void {
    const parts = (this.#partial + chunk).split(/\r\n|\r|\n/);
    this.#partial = (parts.pop() ?? '').slice(0, MAX_LINE);
    for (const line of parts) this.#line(line.slice(0, MAX_LINE));
  }

  #line(line: string): void {
    if (line.trim() === '') return;
    this.#ring.push(line);
    if (this.#ring.length > this.#ringSize) this.#ring.shift();
    this.#log.debug({ stderr: maskCredentials(line) });
    this.emit('stderr', line);
  }

  #onError(err: Error): void {
    // 'error' comes for a failed spawn (ENOENT, EACCES) and for a failed kill; only the first
    // matters, and only before the process ran.
    if (this.#exit || this.#child?.pid !== undefined) {
      this.#log.debug({ err: err.message }, 'child process error');
      return;
    }
    this.#exit = { code: null, signal: null, error: new Error(`could not start ${this.label} (${this.#child?.spawnfile}): ${maskCredentials(err.message)}`) };
    this.#finish();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#exit) return;
    this.#exit = { code, signal };
    this.#log.debug({ code, signal }, 'child exited');
    this.#clearTimers();
    // Whatever the leader left behind in its group goes with it.
    this.#killGroup('SIGKILL');
    // 'close' follows once stderr drained; do not wait for it forever.
    this.#after(PIPE_DRAIN_MS, () => this.#finish());
  }

  #finish(): void {
    const exit = this.#exit;
    if (!exit) return; // 'close' without 'exit' cannot happen; 'exit' sets #exit first.
    this.#clearTimers();
    if (this.#partial) {
      this.#line(this.#partial);
      this.#partial = '';
    }
    const child = this.#child;
    if (child) {
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.removeAllListeners();
      // Keep swallowing late errors on the destroyed pipes.
      child.on('error', () => {});
    }
    // Settle first: a throwing 'exit' listener must not leave `done` hanging.
    this.#settle(exit);
    this.emit('exit', exit.code, exit.signal, exit.error);
  }

  #killGroup(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is already empty.
    }
  }

  #after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  protected onClose(): Promise<void> {
    if (!this.#exit) {
      this.#child?.stdin?.end('q');
      this.#after(this.#grace.quit, () => {
        this.#log.debug({ grace: this.#grace.quit }, "no exit after 'q': SIGTERM to the group");
        this.#killGroup('SIGTERM');
        this.#after(this.#grace.term, () => {
          this.#log.warn({ grace: this.#grace.term }, 'no exit after SIGTERM: SIGKILL to the group');
          this.#killGroup('SIGKILL');
        });
      });
    }
    return this.exited.then(() => undefined);
  }
}
