// What a stream does with the sources after its primary (a configured transcode, an automatic
// one): retry one that fails while used, stop one nobody uses any more, and remember one that
// gave nothing a waiter takes. The stream owns the runs; this holds the rules.
import type { Backoff, RetryTimers } from './backoff.js';
import { SourceError } from './errors.js';
import { maskCredentials, type Logger } from './log.js';
import type { MediaRequest } from './media.js';
import { wanted, type SourceList } from './source-plan.js';
import type { SourceRun, SourceRuns } from './source-run.js';
import type { StreamConsumers } from './stream-consumers.js';
import type { BackoffEvent } from './stream-types.js';

export interface SecondaryHost {
  readonly runs: SourceRuns;
  readonly list: SourceList;
  readonly retries: RetryTimers;
  readonly consumers: StreamConsumers;
  readonly log: Logger;
  /** The primary is live and the stream not closed: the only time secondaries run. */
  live(): boolean;
  startRun(index: number, want: MediaRequest, backoff?: Backoff): void;
  plan(): void;
  backoff(e: BackoffEvent): void;
}

export class Secondaries {
  constructor(private readonly host: SecondaryHost) {}

  /**
   * A secondary that just went live and got planned: when nobody takes anything from it, it
   * stops. It is not started again until the primary restarts when waiters lacked what it could
   * not give, unless it is an automatic transcode (it gives one known codec; its viewers left).
   */
  wentLive(run: SourceRun): void {
    const h = this.host;
    if (!h.runs.current(run) || h.consumers.inUse(h.runs.sorted(), h.list, run.index)) return;
    if (!h.list.isAuto(run.index) && h.consumers.planned().some((c) => c.waiting && !c.internal)) h.list.exhausted.add(run.index);
    this.stopUnused();
    h.plan();
  }

  /** Secondaries nobody takes anything from any more stop, and their pending retries go. */
  stopUnused(): void {
    const h = this.host;
    if (!h.live()) return;
    const runs = h.runs.sorted();
    for (const run of runs) {
      if (run.index === 0 || !run.tracks || h.consumers.inUse(runs, h.list, run.index)) continue;
      h.log.info({ index: run.index, source: maskCredentials(run.source.url) }, 'secondary source unused: stopping it');
      h.runs.end(run);
    }
    for (const index of h.retries.indices()) if (index > 0 && !h.consumers.inUse(runs, h.list, index)) h.retries.cancel(index);
  }

  /** One ended by itself: retried with its own backoff while used, else given up until the primary restarts. */
  failed(index: number, err: Error, run: SourceRun | undefined): void {
    const h = this.host;
    h.log.warn({ index, err: maskCredentials(err.message) }, 'secondary source failed');
    if (!h.consumers.uses(index) || (err instanceof SourceError && err.permanent) || !run) {
      // Nobody relies on it yet: waiters go on with what the other sources give.
      h.list.exhausted.add(index);
      h.plan();
      return;
    }
    run.backoff.ranFor(run.ranFor());
    const delay = run.backoff.next();
    h.backoff({ attempt: run.backoff.attempts, delay, ceiling: run.backoff.ceiling, error: err, source: index });
    h.log.info({ index, delay }, 'retrying secondary source');
    const backoff = run.backoff;
    const gone = run.source.done;
    h.retries.set(index, delay, () => {
      void gone.then(() => {
        if (!h.live() || h.runs.has(index)) return;
        h.consumers.restartGates(index);
        h.startRun(index, wanted(h.consumers.planned()), backoff);
      });
    });
  }
}
