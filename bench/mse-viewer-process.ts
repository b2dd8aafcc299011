// The MSE viewers of bench/mse.ts, in a process of their own so that their CPU is not camrelay's:
// `ws` clients on /api/ws speaking go2rtc's MSE ({"type":"mse"} with its codec list), reading
// every message and counting bytes. Driven over IPC by bench/mse-viewers.ts; answers every request
// with its id.
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import type { MseRequest, MseStats } from './mse-viewers.js';

const CODECS = 'avc1.640029,avc1.64002A,avc1.640033,hvc1.1.6.L153.B0,mp4a.40.2,mp4a.40.5,flac,opus';

class MseWsViewer {
  readonly ws: WebSocket;
  bytes = 0;
  messages = 0;
  binary = 0;
  answer: string | undefined;
  error: string | undefined;
  /** performance.now() when the mse request was sent, and when the first fragment (binary after the init) came. */
  sentAt: number | undefined;
  firstFragmentAt: number | undefined;
  #waiters = new Set<() => void>();

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on('error', (e) => (this.error ??= e.message));
    this.ws.on('close', () => this.#wake());
    this.ws.on('open', () => {
      this.sentAt = performance.now();
      this.ws.send(JSON.stringify({ type: 'mse', value: CODECS }));
    });
    this.ws.on('message', (d: RawData, isBinary: boolean) => {
      const n = Buffer.isBuffer(d) ? d.length : Array.isArray(d) ? d.reduce((x, b) => x + b.length, 0) : d.byteLength;
      this.bytes += n;
      this.messages++;
      if (!isBinary) {
        const m = JSON.parse(d.toString()) as { type: string; value?: string };
        if (m.type === 'mse') this.answer = m.value;
        else if (m.type === 'error') this.error = String(m.value);
        return;
      }
      this.binary++;
      if (this.binary === 2) {
        this.firstFragmentAt = performance.now();
        this.#wake();
      }
    });
  }

  /** Resolves once the first fragment came; rejects after `ms` or if the socket closed first. */
  fragment(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.firstFragmentAt !== undefined) done(undefined);
        else if (this.ws.readyState === WebSocket.CLOSED) done(new Error(`the socket closed before a fragment (${this.error ?? 'no error'})`));
      };
      const done = (e: Error | undefined) => {
        clearTimeout(t);
        this.#waiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      const t = setTimeout(() => done(new Error(`no fragment within ${ms} ms (answer ${this.answer ?? 'none'}, ${this.binary} binary messages, ${this.error ?? 'no error'})`)), ms);
      this.#waiters.add(check);
      check();
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

const viewers: MseWsViewer[] = [];

function stats(): MseStats {
  return { at: performance.now(), bytes: viewers.map((v) => v.bytes), open: viewers.filter((v) => v.ws.readyState === WebSocket.OPEN).length };
}

async function handle(m: MseRequest): Promise<unknown> {
  switch (m.cmd) {
    case 'open': {
      // One after another, as people join.
      for (let i = 0; i < m.count; i++) {
        const v = new MseWsViewer(m.url);
        viewers.push(v);
        await v.fragment(m.timeoutMs);
      }
      return stats();
    }
    case 'join': {
      // One more viewer, timed from its mse request to its first fragment, then gone.
      const v = new MseWsViewer(m.url);
      try {
        await v.fragment(m.timeoutMs);
        return { ms: v.firstFragmentAt! - v.sentAt! };
      } finally {
        v.ws.close();
      }
    }
    case 'stats':
      return stats();
    case 'closeAll': {
      for (const v of viewers) v.ws.close();
      const n = viewers.length;
      viewers.length = 0;
      return { closed: n };
    }
    case 'exit':
      for (const v of viewers) v.ws.terminate();
      setImmediate(() => process.exit(0));
      return { bye: true };
  }
}

process.on('message', (m: MseRequest) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, ok: true, result }),
    (e: unknown) => process.send?.({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, ok: true, result: 'ready' });
