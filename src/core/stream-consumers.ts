// The consumers attached to one stream: for each, the 'close' listener that detaches it, the
// sources it takes its kinds from, its delivery gate, and while it waits for tracks the promise
// attach() returned with its start timeout. The stream decides; this keeps the books.
import type { Consumer } from './consumer.js';
import { ConsumerGate } from './delivery-gate.js';
import type { Kind, Track } from './media.js';
import { bindable, type PlannedConsumer, type PlannedList, type PlannedRun } from './source-plan.js';

interface Waiter {
  resolve: (tracks: Track[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface Attachment {
  onClose: () => void;
  /** Per kind, the index of the source whose track this consumer takes; fixed once resolved. */
  from: Map<Kind, number>;
  /** Video is held back until the consumer's first keyframe (again after each reconnect). */
  gate: ConsumerGate;
  /** Set until attach() resolved or rejected. */
  waiter?: Waiter;
}

export class StreamConsumers {
  #all = new Map<Consumer, Attachment>();

  has(c: Consumer): boolean {
    return this.#all.has(c);
  }
  get(c: Consumer): Attachment | undefined {
    return this.#all.get(c);
  }
  get size(): number {
    return this.#all.size;
  }
  keys(): IterableIterator<Consumer> {
    return this.#all.keys();
  }
  /** Read live by the fan-out: one added or removed meanwhile is seen (SlicedFanOut). */
  entries(): IterableIterator<[Consumer, Attachment]> {
    return this.#all.entries();
  }

  /**
   * Adds `c` waiting for its tracks; `detach` runs on its 'close'. After `timeoutMs` the waiter
   * is taken away, `onTimeout` runs (it detaches) and the promise rejects with what it returns.
   */
  add(c: Consumer, detach: () => void, timeoutMs: number, onTimeout: () => Error): Promise<Track[]> {
    const a: Attachment = { onClose: detach, from: new Map(), gate: new ConsumerGate() };
    c.once('close', a.onClose);
    this.#all.set(c, a);
    return new Promise<Track[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        a.waiter = undefined;
        reject(onTimeout());
      }, timeoutMs);
      a.waiter = { resolve, reject, timer };
    });
  }

  /** Forgets `c`; a waiter still pending rejects with `whyWaiting`. Undefined when it was not attached. */
  remove(c: Consumer, whyWaiting: () => Error): Attachment | undefined {
    const a = this.#all.get(c);
    if (!a) return undefined;
    c.off('close', a.onClose);
    this.#all.delete(c);
    if (a.waiter) {
      clearTimeout(a.waiter.timer);
      a.waiter.reject(whyWaiting());
    }
    return a;
  }

  /**
   * Ends `c`'s wait: binds it to `from` and resolves its attach() with, per kind, the track of
   * that source it accepts (`tracksOf` gives a source's tracks by index).
   */
  resolve(c: Consumer, from: Map<Kind, number>, tracksOf: (index: number) => readonly Track[]): void {
    const a = this.#all.get(c);
    if (!a?.waiter) return;
    const tracks: Track[] = [];
    // Video first, whichever source came first: outputs list their tracks in this order.
    for (const kind of ['video', 'audio'] as const) {
      const index = from.get(kind);
      if (index === undefined) continue;
      const t = tracksOf(index).find((x) => x.kind === kind && c.request[kind]?.includes(x.codec.name));
      if (t) tracks.push(t);
    }
    const w = a.waiter;
    a.waiter = undefined;
    clearTimeout(w.timer);
    a.from = from;
    a.gate.restart();
    w.resolve(tracks);
  }

  /** Takes every waiter away (without rejecting it): returns the consumers and their rejections. */
  takeWaiters(): { consumer: Consumer; reject: (err: Error) => void }[] {
    const out: { consumer: Consumer; reject: (err: Error) => void }[] = [];
    for (const [c, a] of this.#all) {
      if (!a.waiter) continue;
      const w = a.waiter;
      a.waiter = undefined;
      clearTimeout(w.timer);
      out.push({ consumer: c, reject: w.reject });
    }
    return out;
  }

  /** Whether anyone but our own transcodes watches. */
  watched(): boolean {
    for (const c of this.#all.keys()) if (!c.internal) return true;
    return false;
  }

  /** Our own transcodes reading this stream. */
  internal(): Consumer[] {
    return [...this.#all.keys()].filter((c) => c.internal);
  }

  /** Whether some consumer takes a kind from source `index`. */
  uses(index: number): boolean {
    for (const a of this.#all.values()) for (const i of a.from.values()) if (i === index) return true;
    return false;
  }

  /** Whether a consumer takes a kind from source `index`, or a waiter will once its other kinds come. */
  inUse(runs: readonly PlannedRun[], list: PlannedList, index: number): boolean {
    if (this.uses(index)) return true;
    for (const [c, a] of this.#all) {
      if (a.waiter && !c.internal && [...bindable(c.request, false, runs, list).values()].includes(index)) return true;
    }
    return false;
  }

  /** The secondary sources (index > 0) some consumer takes a kind from. */
  secondariesInUse(): Set<number> {
    const out = new Set<number>();
    for (const a of this.#all.values()) for (const i of a.from.values()) if (i > 0) out.add(i);
    return out;
  }

  /** Consumers wait for a keyframe of their video source again; only those of `videoFrom` when given. */
  restartGates(videoFrom?: number): void {
    for (const a of this.#all.values()) if (videoFrom === undefined || a.from.get('video') === videoFrom) a.gate.restart();
  }

  /** As source-plan.ts sees them. */
  planned(): PlannedConsumer<Consumer>[] {
    return [...this.#all].map(([c, a]) => ({ key: c, request: c.request, internal: c.internal ?? false, waiting: a.waiter !== undefined }));
  }
}
