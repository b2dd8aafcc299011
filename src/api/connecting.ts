// webrtc.max_connecting_per_client: WebRTC sessions between the offer and the connection (ICE +
// DTLS done), per client address. A session that never connects holds its sockets (and the
// source) until connect_timeout; 300 such offers at once exhausted the fds. One address is also
// often many viewers (Home Assistant opens every camera of a dashboard from its own address; 50
// viewers at once is a test here), so an offer beyond the bound waits for a place, holding only
// its request (or its WebSocket, one offer at a time), for up to the connect timeout, and is
// refused when none comes. The waiting ones are bounded by what holds them: api.max_connections.
import type { Owned } from '../core/owned.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';
import { HttpError } from './http-error.js';

const refusedLog = new LogThrottle('webrtc offer refused: webrtc.max_connecting_per_client reached for this address');

/** 'unknown' for a socket that no longer knows its peer; IPv4-mapped IPv6 as plain IPv4. */
export function clientKey(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** A session whose 'connected' event (or close) gives its place back. */
export interface Connecting extends Owned {
  info(): { readonly [key: string]: unknown };
}

interface Client {
  connecting: number;
  waiting: (() => void)[];
}

export class ConnectingTable {
  #byClient = new Map<string, Client>();

  constructor(
    readonly max: number,
    /** The longest an offer waits for a place (webrtc.timeouts.connect). */
    readonly maxWaitMs: number,
  ) {}

  /** Sessions still connecting from this address. */
  count(addr: string | undefined): number {
    return this.#byClient.get(clientKey(addr))?.connecting ?? 0;
  }

  /**
   * A place for one more connecting session from `addr`: at once when there is one, else after a
   * wait; rejects with an HttpError(503) naming the bound when none comes within maxWaitMs, and with `signal`'s reason when the viewer leaves. The returned release is idempotent.
   */
  async acquire(addr: string | undefined, signal: AbortSignal): Promise<() => void> {
    const key = clientKey(addr);
    let c = this.#byClient.get(key);
    if (!c) this.#byClient.set(key, (c = { connecting: 0, waiting: [] }));
    const client = c;
    if (client.connecting >= this.max) {
      await new Promise<void>((resolve, reject) => {
        const give = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const leave = (e: unknown) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          const i = client.waiting.indexOf(give);
          if (i >= 0) client.waiting.splice(i, 1);
          this.#forget(key, client);
          reject(e);
        };
        const onAbort = () => leave(signal.reason ?? new Error('viewer left'));
        const timer = setTimeout(() => leave(this.#refuse(key, 'no place within the connect timeout')), this.maxWaitMs);
        signal.addEventListener('abort', onAbort, { once: true });
        client.waiting.push(give);
      });
    } else client.connecting++;
    // A place handed over by a leaving session was counted for us already (see release).
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = client.waiting.shift();
      if (next) next();
      else {
        client.connecting--;
        this.#forget(key, client);
      }
    };
  }

  /** Keeps the place until `session` connects or closes, whichever comes first. */
  follow(session: Connecting, release: () => void): void {
    if (session.closed || session.info().state === 'connected') return release();
    const done = () => {
      session.off('connected', done);
      session.off('close', done);
      release();
    };
    session.once('connected', done);
    session.once('close', done);
  }

  #forget(key: string, c: Client): void {
    if (c.connecting === 0 && c.waiting.length === 0) this.#byClient.delete(key);
  }

  #refuse(key: string, why: string): HttpError {
    countRefusal('connecting_per_client');
    refusedLog.hit({ remote: key, max: this.max, why });
    return new HttpError(503, `too many WebRTC sessions still connecting from ${key} (webrtc.max_connecting_per_client: ${this.max}); try again once they connect or time out`);
  }
}
