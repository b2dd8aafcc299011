// Which engine a source's `#hardware` gets, from what detection found. Detection runs in the
// background from startup; a transcode that starts before it finished waits for it a bounded
// time (ready()), and one that still finds no answer is encoded in software.
import { log, maskCredentials } from '../../core/log.js';
import type { HardwareReport } from './detect.js';
import { FOREIGN_ENGINES, type Engine, type EngineUse, type HardwareCodec } from './engines.js';

/** What a source asked for: `#hardware` (auto) or `#hardware=<engine>`. */
export type HardwareRequest = 'auto' | Engine | 'videotoolbox' | 'dxva2';

/** How long a transcode waits for detection before it starts in software. */
export const HARDWARE_WAIT_MS = 5000;

export class HardwareEncoders {
  #report: HardwareReport | undefined;
  /** Settles when detection finished (or was stopped); never rejects. */
  readonly settled: Promise<void>;
  /** Warnings already given, so that a source restarted by backoff does not repeat them. */
  #warned = new Set<string>();

  constructor(detection: Promise<HardwareReport> | HardwareReport) {
    if (detection instanceof Promise) {
      this.settled = detection.then(
        (r) => {
          this.#report = r;
        },
        (e: unknown) => {
          log.warn({ err: String(e) }, 'hardware detection failed: transcodes use software');
        },
      );
    } else {
      this.#report = detection;
      this.settled = Promise.resolve();
    }
  }

  /** undefined while detection runs. */
  get report(): HardwareReport | undefined {
    return this.#report;
  }

  /** Resolves when detection finished, after `ms`, or when `signal` aborts, whichever is first. */
  async ready(ms = HARDWARE_WAIT_MS, signal?: AbortSignal): Promise<void> {
    if (this.#report || signal?.aborted) return;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        this.settled,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, ms);
          onAbort = resolve;
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The engine for a command line encoding `codecs`, or undefined for software. One engine serves
   * every encoded output of a command (frames on one GPU cannot feed another engine's encoder), so
   * it must have passed the test encode for each codec. Never throws: an engine that does not
   * work here is a warning, given once per source URL and engine, and software.
   */
  pick(request: HardwareRequest, codecs: readonly HardwareCodec[], url: string): EngineUse | undefined {
    if (codecs.length === 0) return undefined;
    const report = this.#report;
    if (!report) {
      this.#warnOnce(`${url}\0pending`, { url: maskCredentials(url) }, 'hardware detection has not finished: this transcode runs in software');
      return undefined;
    }
    if (request === 'auto') {
      const first = report.pick[codecs[0]!];
      const same = first && codecs.every((c) => report.pick[c]?.engine === first.engine && report.pick[c]?.device === first.device);
      // No warning: `#hardware` means "if there is some"; the startup log says there is none.
      return same ? first : undefined;
    }
    const tests = report.tests.filter((t) => t.engine === request && codecs.includes(t.codec));
    const failed = codecs.filter((c) => !tests.some((t) => t.codec === c && t.ok));
    const device = tests.find((t) => t.ok)?.device;
    const sameDevice = tests.every((t) => !t.ok || t.device === device);
    if (failed.length === 0 && sameDevice) return device === undefined ? { engine: request as Engine } : { engine: request as Engine, device };
    const why = tests.find((t) => !t.ok)?.info ?? `${request} is an engine of ${FOREIGN_ENGINES.get(request) ?? 'another system'}`;
    this.#warnOnce(`${url}\0${request}`, { url: maskCredentials(url), engine: request, why }, `#hardware=${request} does not work on this machine: encoding ${failed.join(', ') || codecs.join(', ')} in software`);
    return undefined;
  }

  #warnOnce(key: string, fields: Record<string, string>, msg: string): void {
    if (this.#warned.has(key)) return;
    // Bounded: one entry per configured source and engine, but API sources come and go.
    if (this.#warned.size >= 1024) this.#warned.clear();
    this.#warned.add(key);
    log.warn(fields, msg);
  }
}
