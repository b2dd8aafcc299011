// A go2rtc signalling client on /api/ws that names itself with a User-Agent of our choosing: the
// server logs it on 'ws connected', which is how the soak finds the socket id (and through it the
// session) of a cycle in camrelay's log without asking camrelay anything.
import { WebSocket, type RawData } from 'ws';

export interface WsMsg {
  type: string;
  value?: unknown;
}

export class SoakWs {
  readonly ws: WebSocket;
  readonly messages: WsMsg[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  #onMessage = new Set<(m: WsMsg) => void>();

  constructor(port: number, src: string, readonly userAgent: string) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws?src=${encodeURIComponent(src)}`, { headers: { 'User-Agent': userAgent } });
    this.ws.on('error', () => undefined);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', () => reject(new Error('ws closed before it opened')));
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => this.ws.once('close', () => resolve()));
    this.ws.on('message', (d: RawData) => {
      let m: WsMsg;
      try {
        m = JSON.parse(d.toString()) as WsMsg;
      } catch {
        return;
      }
      this.messages.push(m);
      for (const f of this.#onMessage) f(m);
    });
  }

  /** Calls `f` for every message so far and every later one. */
  onMessage(f: (m: WsMsg) => void): void {
    for (const m of this.messages) f(m);
    this.#onMessage.add(f);
  }

  /** Sends and resolves once the frame has been handed to the kernel. */
  send(m: unknown): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(JSON.stringify(m), (e) => (e ? reject(e) : resolve())));
  }

  /** The first message matching `match`, within `ms`. */
  next(match: (m: WsMsg) => boolean, ms: number): Promise<WsMsg> {
    return new Promise((resolve, reject) => {
      const seen = this.messages.find(match);
      if (seen) return resolve(seen);
      const t = setTimeout(() => {
        this.#onMessage.delete(f);
        reject(new Error(`no matching ws message within ${ms} ms; got ${JSON.stringify(this.messages).slice(0, 300)}`));
      }, ms);
      const f = (m: WsMsg) => {
        if (!match(m)) return;
        clearTimeout(t);
        this.#onMessage.delete(f);
        resolve(m);
      };
      this.#onMessage.add(f);
      void this.closed.then(() => {
        if (!this.#onMessage.has(f)) return;
        clearTimeout(t);
        this.#onMessage.delete(f);
        reject(new Error(`ws closed while waiting; got ${JSON.stringify(this.messages).slice(0, 300)}`));
      });
    });
  }

  /** A polite close (close frame, then TCP close) or a drop (TCP close at once). */
  end(how: 'close' | 'drop'): Promise<void> {
    this.#onMessage.clear();
    if (how === 'drop') this.ws.terminate();
    else this.ws.close();
    return this.closed;
  }
}
