import { created, released } from './objects.js';
import { emitIsolated, TypedEmitter, type AnyEvents, type EventMap } from './typed-emitter.js';

/** The events every resource owner emits, whatever its own map says. */
export interface OwnedEvents {
  /** Exactly once, at the end of close(); `reason` is the error it ended with, if any. */
  close: [reason?: Error];
}

/**
 * Base of every resource owner (DESIGN.md, ownership rules 1, 2 and 6). close() is idempotent and
 * makes the object unusable at once; `done` settles when what it owned is really gone (a child
 * process exited, a socket fully closed), which is what a parent waits for before replacing it.
 * `E` types the owner's own events (see TypedEmitter); a listener that throws, 'close' listeners
 * included, is logged and counted and never unwinds into close() or whoever emitted.
 */
export abstract class Owned<E extends EventMap<E> = AnyEvents> extends TypedEmitter<E & OwnedEvents> {
  #closed = false;
  #done: Promise<void> | undefined;
  /** Settles `done` for those who asked before close() was called. */
  #whenReleased: (() => void) | undefined;
  #released: Promise<void> | undefined;

  constructor(readonly objectKind: string) {
    super(objectKind);
    created(objectKind);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once close() ran and the resources it released are gone. Never rejects. */
  get done(): Promise<void> {
    return this.#done ?? (this.#released ??= new Promise((resolve) => (this.#whenReleased = resolve)));
  }

  close(reason?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    let pending: void | Promise<void> = undefined;
    try {
      pending = this.onClose(reason);
    } finally {
      released(this.objectKind);
      this.#done = Promise.resolve(pending).then(
        () => undefined,
        () => undefined,
      );
      const waiting = this.#whenReleased;
      if (waiting) void this.#done.then(waiting);
      emitIsolated(this, this.objectKind, 'close', [reason]);
    }
  }

  /** Release children and resources; return a promise if some release is asynchronous. */
  protected abstract onClose(reason?: Error): void | Promise<void>;
}
