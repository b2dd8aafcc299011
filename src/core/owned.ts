import { EventEmitter } from 'node:events';
import { created, released } from './objects.js';

/**
 * Base of every resource owner (DESIGN.md, ownership rules 1, 2 and 6). close() is idempotent and
 * makes the object unusable at once; `done` settles when what it owned is really gone (a child
 * process exited, a socket fully closed), which is what a parent waits for before replacing it.
 */
export abstract class Owned extends EventEmitter {
  #closed = false;
  #done: Promise<void> | undefined;

  constructor(readonly objectKind: string) {
    super();
    created(objectKind);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once close() ran and the resources it released are gone. Never rejects. */
  get done(): Promise<void> {
    return this.#done ?? new Promise((resolve) => this.once('released', resolve));
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
      void this.#done.then(() => this.emit('released'));
      this.emit('close', reason);
    }
  }

  /** Release children and resources; return a promise if some release is asynchronous. */
  protected abstract onClose(reason?: Error): void | Promise<void>;
}
