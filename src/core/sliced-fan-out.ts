import { performance } from 'node:perf_hooks';

/**
 * Hands each queued item to every target, in order, and gives the event loop back once a turn has
 * spent `sliceMs`. A keyframe of ~90 packets to 50 WebRTC viewers is thousands of synchronous
 * sends (tens of ms); done in one go it would stall every timer, signalling message and RTSP read
 * of the process for that long. Items stay in order for every target: an item starts only after
 * the one before it reached all targets. Targets are read live (a Map iterator is kept across
 * turns): one removed meanwhile is skipped, one added meanwhile gets the rest of the current item.
 * Below the budget everything runs synchronously, as a plain loop would.
 */
export class SlicedFanOut<Item, Target> {
  #queue: Item[] = [];
  #targets: Iterator<Target> | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #running = false;

  constructor(
    private readonly targets: () => IterableIterator<Target>,
    private readonly deliver: (item: Item, target: Target) => void,
    private readonly sliceMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  push(item: Item): void {
    this.#queue.push(item);
    // Inside a delivery (a consumer that reacts synchronously) or between slices: it waits its turn.
    if (!this.#running && !this.#immediate) this.#drain();
  }

  get size(): number {
    return this.#queue.length;
  }

  /** Drops everything queued (the stream is closing). */
  clear(): void {
    this.#queue.length = 0;
    this.#targets = undefined;
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
  }

  #drain(): void {
    this.#immediate = undefined;
    this.#running = true;
    const deadline = this.now() + this.sliceMs;
    try {
      while (this.#queue.length > 0) {
        const item = this.#queue[0]!;
        const targets = (this.#targets ??= this.targets());
        let next = targets.next();
        for (; !next.done; next = targets.next()) {
          this.deliver(item, next.value);
          // clear() from inside a delivery (the stream closed): the rest is not ours to finish.
          if (this.#queue[0] !== item || this.#targets !== targets) break;
          if (this.now() >= deadline) {
            this.#immediate = setImmediate(() => this.#drain());
            return;
          }
        }
        if (next.done && this.#queue[0] === item) {
          this.#targets = undefined;
          this.#queue.shift();
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
