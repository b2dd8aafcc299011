// webrtc.max_connecting_per_client: WebRTC sessions between the offer and the connection (ICE +
// DTLS done), per client address. A session that never connects holds its sockets (and the
// source) until connect_timeout; 300 such offers at once exhausted the fds. A client that opens a
// few cameras at once is far below the bound; one that offers without ever connecting meets it.
import type { WebRtcSession } from '../outputs/webrtc/session.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';
import { HttpError } from './http-error.js';

/**
 * How often a session's state is looked at while it connects: WebRtcSession tells nobody when it
 * connects, and this bounds how long a connected session still counts here.
 */
const POLL_MS = 200;

const refusedLog = new LogThrottle('webrtc offer refused: webrtc.max_connecting_per_client reached for this address');

/** 'unknown' for a socket that no longer knows its peer; IPv4-mapped IPv6 as plain IPv4. */
export function clientKey(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

export class ConnectingTable {
  #byClient = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Sessions still connecting from this address. */
  count(addr: string | undefined): number {
    return this.#byClient.get(clientKey(addr)) ?? 0;
  }

  /**
   * A place for one more connecting session from `addr`, or an HttpError(503) naming the limit.
   * The returned release is idempotent; `follow` hands it to the session once there is one.
   */
  take(addr: string | undefined): () => void {
    const key = clientKey(addr);
    const n = this.#byClient.get(key) ?? 0;
    if (n >= this.max) {
      countRefusal('connecting_per_client');
      refusedLog.hit({ remote: key, max: this.max });
      throw new HttpError(503, `too many WebRTC sessions still connecting from ${key} (webrtc.max_connecting_per_client: ${this.max}); try again once they connect or time out`);
    }
    this.#byClient.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#byClient.get(key) ?? 1) - 1;
      if (left > 0) this.#byClient.set(key, left);
      else this.#byClient.delete(key);
    };
  }

  /** Keeps the place until `session` connects or closes, whichever comes first. */
  follow(session: WebRtcSession, release: () => void): void {
    if (session.closed) return release();
    const done = () => {
      clearInterval(timer);
      session.off('close', done);
      release();
    };
    const timer = setInterval(() => {
      if (session.info().state === 'connected') done();
    }, POLL_MS);
    timer.unref();
    session.once('close', done);
  }
}
