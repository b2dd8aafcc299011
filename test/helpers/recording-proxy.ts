// A TCP proxy on 127.0.0.1 that forwards to a port and records what each side sent, connection
// by connection: what real RTSP clients (ffmpeg, GStreamer) say, captured at test time.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface RecordedConnection {
  /** Bytes the client sent, in order. */
  fromClient: Buffer[];
  /** Bytes the server sent, in order. */
  fromServer: Buffer[];
  closed: boolean;
}

export class RecordingProxy {
  readonly connections: RecordedConnection[] = [];
  #server: Server;
  #sockets = new Set<Socket>();
  /** Per connection, at most this many bytes are kept per direction (media is not the point). */
  constructor(
    private readonly target: number,
    private readonly keepBytes = 256 * 1024,
  ) {
    this.#server = createServer((client) => this.#accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
    return this.port;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  #accept(client: Socket): void {
    const rec: RecordedConnection = { fromClient: [], fromServer: [], closed: false };
    this.connections.push(rec);
    const upstream = connect(this.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => {
        this.#sockets.delete(s);
        rec.closed = true;
        client.destroy();
        upstream.destroy();
      });
    }
    const keep = (into: Buffer[], d: Buffer) => {
      if (into.reduce((n, b) => n + b.length, 0) < this.keepBytes) into.push(Buffer.from(d));
    };
    client.on('data', (d: Buffer) => {
      keep(rec.fromClient, d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      keep(rec.fromServer, d);
      client.write(d);
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
