import { Owned } from '../core/owned.js';
import { CloseReason } from '../core/close-reason.js';
import type { ConnectingTable, Connecting } from './connecting.js';
import { HttpError } from './http-error.js';

/** What the table holds: a session with an id that says when it has connected. */
export interface TableSession extends Connecting {
  readonly id: string;
}

export interface SessionLimits {
  /** webrtc.max_sessions: opens beyond it are refused (undefined: no limit). */
  maxSessions?: number;
  /** Told of each open refused by maxSessions (metrics). */
  onRefused?: () => void;
  /** webrtc.max_connecting_per_client (undefined: no limit). */
  connecting?: ConnectingTable;
}

export interface OpenRequest<T, A> {
  /** The viewer's address, for the connecting-per-client bound. */
  remoteAddr: string | undefined;
  /** Aborted when the viewer leaves before the answer. */
  signal: AbortSignal;
  /** Makes the session (may throw: nothing is held then). */
  create(): T;
  /** Sets it up (attach, answer); closes the session itself before it rejects. */
  setUp(session: T): Promise<A>;
}

/**
 * The viewer sessions of every signalling path (HTTP and WebSocket), from construction on: a
 * session is `opening` while it is set up and `open` once answered; closing the table (server
 * shutdown) closes both. A session leaves on its own 'close'. Only open sessions are found by id
 * and counted in `size`; a limit on sessions compares `load` (both).
 * Events: 'add' (T) when a session is answered (metrics count them).
 */
export class SessionTable<T extends TableSession> extends Owned {
  #byId = new Map<string, T>();
  #opening = new Set<T>();

  constructor(private readonly limits: SessionLimits = {}) {
    super('SessionTable');
  }

  /**
   * The one way to open a session: waits for a connecting place, checks the session limit, holds
   * the session as `opening` while it is set up, and adds it as `open` unless its viewer left.
   * Resolves undefined when the viewer left before the answer (the session is closed). Rejects
   * with HttpError(503) at a bound or after shutdown, with the signal's reason when the viewer
   * left while waiting for a place, and with the session's error otherwise.
   */
  async open<A>(r: OpenRequest<T, A>): Promise<{ session: T; answer: A } | undefined> {
    if (this.closed) throw new HttpError(503, 'server shutting down');
    const { connecting, maxSessions: max } = this.limits;
    // May wait for a place: before the session limit is looked at.
    const place = await connecting?.acquire(r.remoteAddr, r.signal);
    let handedOver = false;
    try {
      if (this.closed) throw new HttpError(503, 'server shutting down');
      if (max !== undefined && this.load >= max) {
        this.limits.onRefused?.();
        throw new HttpError(503, `too many sessions (max ${max})`);
      }
      const session = r.create();
      this.#opening.add(session);
      session.once('close', () => {
        this.#opening.delete(session);
        if (this.#byId.get(session.id) === session) this.#byId.delete(session.id);
      });
      const answer = await r.setUp(session);
      if (r.signal.aborted) {
        session.close(new CloseReason('viewer_left'));
        return undefined;
      }
      // Closed between the answer and this turn (shutdown): no place in the table any more.
      if (session.closed) throw new Error('session closed during setup');
      this.#opening.delete(session);
      this.#byId.set(session.id, session);
      this.emit('add', session);
      if (place) {
        connecting!.follow(session, place);
        handedOver = true;
      }
      return { session, answer };
    } finally {
      if (!handedOver) place?.();
    }
  }

  get(id: string): T | undefined {
    return this.#byId.get(id);
  }

  /** Sessions answered and not closed. */
  get size(): number {
    return this.#byId.size;
  }

  /** Sessions open plus sessions opening: what a limit on sessions compares. */
  get load(): number {
    return this.#byId.size + this.#opening.size;
  }

  protected onClose(): Promise<void> {
    const all = [...this.#opening, ...this.#byId.values()];
    for (const s of all) s.close(new CloseReason('shutdown'));
    return Promise.all(all.map((s) => s.done)).then(() => undefined);
  }
}
