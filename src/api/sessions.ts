import { Owned } from '../core/owned.js';

interface Closable extends Owned {
  readonly id: string;
}

/**
 * The viewer sessions the API created, by id, so that `DELETE` can end one. A session leaves the
 * map on its own 'close'; closing the map closes every session (server shutdown).
 * Events: 'add' (T) for each session added (metrics count them).
 */
export class SessionTable<T extends Closable> extends Owned {
  #byId = new Map<string, T>();
  /** Opens under way: they count against a session limit before they are added. */
  #opening = 0;

  constructor() {
    super('SessionTable');
  }

  add(s: T): void {
    this.emit('add', s);
    if (this.closed) {
      s.close(new Error('server shutting down'));
      return;
    }
    this.#byId.set(s.id, s);
    s.once('close', () => this.#byId.delete(s.id));
  }

  get(id: string): T | undefined {
    return this.#byId.get(id);
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Sessions open plus opens under way: what a limit on sessions compares. */
  get load(): number {
    return this.#byId.size + this.#opening;
  }

  /** Holds a place for a session being opened; call the returned function once, when done. */
  opening(): () => void {
    this.#opening++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#opening--;
    };
  }

  protected onClose(): Promise<void> {
    const all = [...this.#byId.values()];
    for (const s of all) s.close(new Error('server shutdown'));
    return Promise.all(all.map((s) => s.done)).then(() => undefined);
  }
}
