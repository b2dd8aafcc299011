// A go2rtc signalling client as Home Assistant's is one: JSON text frames on /api/ws.
import { WebSocket, type RawData } from 'ws';
import { waitEvent } from './wait.js';

export interface Msg {
  type: string;
  value?: unknown;
}

/** A signalling client as Home Assistant's go2rtc client is one: JSON text frames on /api/ws. */
export class Signalling {
  readonly ws: WebSocket;
  readonly messages: Msg[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters = new Set<() => void>();

  constructor(port: number, src: string, path = '/api/ws', extraQuery = '') {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}${path}?src=${encodeURIComponent(src)}${extraQuery}`);
    this.ws.on('message', (d: RawData) => {
      this.messages.push(JSON.parse(d.toString()) as Msg);
      for (const w of this.#waiters) w();
    });
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  }

  async open(): Promise<this> {
    await waitEvent(this.ws, 'open', 3000);
    return this;
  }

  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  /** The first message (from index `from` on) that matches, waiting for it up to `ms`. */
  next(match: (m: Msg) => boolean, ms = 8000, from = 0): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.messages.slice(from).find(match);
        if (!m) return false;
        clearTimeout(t);
        this.#waiters.delete(onMsg);
        resolve(m);
        return true;
      };
      const onMsg = () => void check();
      const t = setTimeout(() => {
        this.#waiters.delete(onMsg);
        reject(new Error(`no matching message within ${ms} ms; got ${JSON.stringify(this.messages).slice(0, 400)}`));
      }, ms);
      if (!check()) this.#waiters.add(onMsg);
    });
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

