// A camera that is busy for a while: a TCP front on 127.0.0.1 whose first `refusals` connections
// get `503 Service Unavailable` to DESCRIBE (OPTIONS is answered as a camera would), and whose
// later connections are passed byte for byte to a real camera. It records when each connection
// came, so a test can see the client's retry schedule.
import net from 'node:net';
import { RtspHeaders, RtspMessageReader, serializeResponse } from '../../src/rtsp/message.js';

export class BusyFront {
  readonly server: net.Server;
  /** Arrival time (ms, Date.now()) of each connection, refused or passed on. */
  readonly arrivals: number[] = [];
  refused = 0;
  passed = 0;
  port = 0;
  #sockets = new Set<net.Socket>();
  #clients = new Set<net.Socket>();

  private constructor(
    private readonly target: number,
    public refusals: number,
  ) {
    this.server = net.createServer((s) => this.#accept(s));
  }

  /** `target`: the real camera's port; `refusals`: how many connections get 503 (Infinity: all). */
  static async start(target: number, refusals: number): Promise<BusyFront> {
    const f = new BusyFront(target, refusals);
    await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
    f.port = (f.server.address() as net.AddressInfo).port;
    return f;
  }

  url(path = '/cam'): string {
    return `rtsp://127.0.0.1:${this.port}${path}`;
  }

  /** Client connections open now (refused ones stay open until the client hangs up). */
  get open(): number {
    return this.#clients.size;
  }

  #accept(s: net.Socket): void {
    this.arrivals.push(Date.now());
    this.#track(s);
    this.#clients.add(s);
    s.on('close', () => this.#clients.delete(s));
    if (this.arrivals.length <= this.refusals) this.#refuse(s);
    else this.#pass(s);
  }

  #track(s: net.Socket): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => {});
  }

  #refuse(s: net.Socket): void {
    const reader = new RtspMessageReader();
    s.on('data', (chunk: Buffer) => {
      let items;
      try {
        items = reader.push(chunk);
      } catch {
        s.destroy();
        return;
      }
      for (const item of items) {
        if (item.type !== 'request') continue;
        const headers = new RtspHeaders({ CSeq: item.headers.get('cseq') ?? '0' });
        if (item.method === 'OPTIONS') headers.set('Public', 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER');
        const busy = item.method !== 'OPTIONS';
        if (busy && item.method === 'DESCRIBE') this.refused++;
        s.write(serializeResponse({ status: busy ? 503 : 200, reason: busy ? 'Service Unavailable' : 'OK', headers }));
      }
    });
  }

  #pass(s: net.Socket): void {
    this.passed++;
    s.pause();
    const up = net.connect({ host: '127.0.0.1', port: this.target }, () => {
      s.pipe(up);
      up.pipe(s);
      s.resume();
    });
    this.#track(up);
    // Either side going ends both: the camera sees the client leave, and the other way round.
    up.on('close', () => s.destroy());
    s.on('close', () => up.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
