import { Owned } from '../core/owned.js';

interface Closable extends Owned {
  readonly id: string;
}

/**
 * The viewer sessions the API created, by id, so that `DELETE` can end one. A session leaves the
 * map on its own 'close'; closing the map closes every session (server shutdown).
 */
export class SessionTable<T extends Closable> extends Owned {
  #byId = new Map<string, T>();

  constructor() {
    super('SessionTable');
  }

  add(s: T): void {
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

  protected onClose(): Promise<void> {
    const all = [...this.#byId.values()];
    for (const s of all) s.close(new Error('server shutdown'));
    return Promise.all(all.map((s) => s.done)).then(() => undefined);
  }
}
