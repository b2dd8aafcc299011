// api.max_connections: HTTP and WebSocket connections open at once. Each is an fd, and an
// attacker on the LAN can open thousands of idle ones (1,010 were enough to take the API and RTSP
// down at a 1024 fd limit). At the cap, a new connection first takes the place of the oldest one
// that is doing nothing (no request in progress, not a WebSocket: an idle keep-alive, or a
// connection still sending its headers); when every connection is busy, the new one is closed.
// So a flood of idle sockets cannot lock out the API, and requests in progress are never cut.
import type { Socket } from 'node:net';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';

interface State {
  /** Requests on this socket whose response has not closed yet. */
  busy: number;
  /** Upgraded to a WebSocket: long-lived, never idle in this sense. */
  upgraded: boolean;
}

const evictedLog = new LogThrottle('api.max_connections reached: closed an idle connection to admit a new one');
const refusedLog = new LogThrottle('api.max_connections reached and every connection busy: new connection closed');

export class ConnectionLimit {
  /** Insertion order is age: the first idle entry found is the oldest. */
  #sockets = new Map<Socket, State>();

  constructor(readonly max: number) {}

  get size(): number {
    return this.#sockets.size;
  }

  all(): IterableIterator<Socket> {
    return this.#sockets.keys();
  }

  /** A socket just accepted: kept (true) or closed at once (false). */
  admit(s: Socket): boolean {
    if (this.#sockets.size >= this.max && !this.#evictIdle()) {
      countRefusal('max_connections');
      refusedLog.hit({ max: this.max, remote: s.remoteAddress });
      s.destroy();
      return false;
    }
    this.#sockets.set(s, { busy: 0, upgraded: false });
    s.once('close', () => this.#sockets.delete(s));
    return true;
  }

  /** A request started on `s`; `done` is called once its response has closed. */
  requestStarted(s: Socket): () => void {
    const st = this.#sockets.get(s);
    if (!st) return () => undefined;
    st.busy++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      st.busy--;
    };
  }

  upgraded(s: Socket): void {
    const st = this.#sockets.get(s);
    if (st) st.upgraded = true;
  }

  #evictIdle(): boolean {
    for (const [s, st] of this.#sockets) {
      if (st.busy > 0 || st.upgraded) continue;
      countRefusal('max_connections');
      evictedLog.hit({ max: this.max, evicted: s.remoteAddress });
      this.#sockets.delete(s);
      s.destroy();
      return true;
    }
    return false;
  }
}
