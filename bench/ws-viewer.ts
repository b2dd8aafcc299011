// A viewer of rtsp-relay (the baseline) as its jsmpeg player is one: a WebSocket receiving an
// MPEG-TS of MPEG-1 video. It only counts data messages and notes when the first one came and
// when the first picture could be decoded (jsmpeg starts at an MPEG-1 sequence header).
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';

const SEQ_HEADER = Buffer.from([0, 0, 1, 0xb3]);

export class WsViewer {
  packets = 0;
  bytes = 0;
  /** performance.now() of the WebSocket's creation, its first data message, its first picture. */
  readonly opened = performance.now();
  firstData: number | undefined;
  firstPicture: number | undefined;
  readonly ws: WebSocket;
  #header = false;
  #tail = Buffer.alloc(0);
  #pictureWaiters = new Set<() => void>();

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on('error', () => undefined);
    this.ws.on('message', (d: RawData) => this.#onMessage(d as Buffer));
  }

  open(ms = 10000): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`WebSocket not open within ${ms} ms`)), ms);
      this.ws.once('open', () => {
        clearTimeout(t);
        resolve();
      });
      this.ws.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** Resolves with the time of the first picture; rejects after `ms`. */
  picture(ms: number): Promise<number> {
    if (this.firstPicture !== undefined) return Promise.resolve(this.firstPicture);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(t);
        this.#pictureWaiters.delete(done);
        resolve(this.firstPicture!);
      };
      const t = setTimeout(() => {
        this.#pictureWaiters.delete(done);
        reject(new Error(`no MPEG-1 picture within ${ms} ms (${this.packets} messages)`));
      }, ms);
      this.#pictureWaiters.add(done);
    });
  }

  /** Closes the WebSocket (close handshake); returns when it was asked to. */
  close(): number {
    const at = performance.now();
    this.ws.close();
    return at;
  }

  #onMessage(d: Buffer): void {
    const at = performance.now();
    // rtsp-relay's first message is its 8-byte 'jsmp' header, sent before any video.
    if (!this.#header && d.length === 8 && d.toString('latin1', 0, 4) === 'jsmp') {
      this.#header = true;
      return;
    }
    this.packets++;
    this.bytes += d.length;
    this.firstData ??= at;
    if (this.firstPicture === undefined) {
      const b = Buffer.concat([this.#tail, d]);
      if (b.indexOf(SEQ_HEADER) >= 0) {
        this.firstPicture = at;
        for (const w of [...this.#pictureWaiters]) w();
      } else this.#tail = b.subarray(Math.max(0, b.length - 3));
    }
  }
}
