// The server side of RTSP's UDP transport for one session: an RTP port and the RTCP port right
// above it (RFC 3550 11: RTP on an even port, RTCP on the next), bound on the address the player
// connected to. RTP goes only to the player's own address (never to a Transport `destination`).
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { Owned } from '../core/owned.js';

const BIND_ATTEMPTS = 20;

export type UdpChannel = 'rtp' | 'rtcp';

/**
 * Owns two UDP sockets. Events: 'packet' (channel: UdpChannel) for each datagram from the
 * player's address, which is all the session needs to know (it is alive).
 */
export class RtpUdpPair extends Owned {
  #rtp: Socket | undefined;
  #rtcp: Socket | undefined;
  /** Every socket made, bound or not, so close() misses none. */
  #sockets = new Set<Socket>();
  #bound: Promise<void> | undefined;

  constructor(
    private readonly localAddress: string,
    private readonly remoteAddress: string,
  ) {
    super('RtpUdpPair');
  }

  get rtpPort(): number {
    return this.#rtp?.address().port ?? 0;
  }
  get rtcpPort(): number {
    return this.#rtcp?.address().port ?? 0;
  }

  /** Binds both ports (once). Rejects if the pair was closed meanwhile or no pair was free. */
  bind(): Promise<void> {
    this.#bound ??= this.#bindPair();
    return this.#bound;
  }

  async #bindPair(): Promise<void> {
    let last: Error | undefined;
    for (let i = 0; i < BIND_ATTEMPTS; i++) {
      if (this.closed) throw new Error('UDP ports closed while binding');
      const a = this.#socket();
      try {
        await this.#listen(a, 0);
        const p = a.address().port;
        // Whichever of the two is even carries RTP.
        const b = this.#socket();
        const other = p % 2 === 0 ? p + 1 : p - 1;
        try {
          await this.#listen(b, other);
        } catch (e) {
          this.#drop(b);
          throw e;
        }
        if (this.closed) throw new Error('UDP ports closed while binding');
        [this.#rtp, this.#rtcp] = p % 2 === 0 ? [a, b] : [b, a];
        this.#receive(this.#rtp, 'rtp');
        this.#receive(this.#rtcp, 'rtcp');
        return;
      } catch (e) {
        this.#drop(a);
        last = e instanceof Error ? e : new Error(String(e));
        if (this.closed) throw last;
      }
    }
    throw new Error(`no free UDP port pair on ${this.localAddress}: ${last?.message ?? 'unknown error'}`);
  }

  #socket(): Socket {
    const s = createSocket({ type: isIPv6(this.localAddress) ? 'udp6' : 'udp4' });
    // A send error (the player's port closed) is not the session's end: its own timeout is.
    s.on('error', () => undefined);
    this.#sockets.add(s);
    return s;
  }

  #listen(s: Socket, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => done(e);
      // close() during the bind: the bind callback never comes.
      const onClose = () => done(new Error('UDP socket closed while binding'));
      const done = (e?: Error) => {
        s.off('error', onError);
        s.off('close', onClose);
        if (e) reject(e);
        else resolve();
      };
      s.once('error', onError);
      s.once('close', onClose);
      s.bind({ address: this.localAddress, port, exclusive: true }, () => done());
    });
  }

  #receive(s: Socket, channel: UdpChannel): void {
    s.on('message', (_msg, rinfo) => {
      if (rinfo.address === this.remoteAddress || rinfo.address === `::ffff:${this.remoteAddress}`) this.emit('packet', channel);
    });
  }

  #drop(s: Socket): void {
    this.#sockets.delete(s);
    try {
      s.close();
    } catch {
      // Not bound yet or already closed: nothing to release.
    }
  }

  /** Sends one datagram made of `chunks` to the player's `port`. */
  send(channel: UdpChannel, chunks: readonly Buffer[], port: number): void {
    const s = channel === 'rtp' ? this.#rtp : this.#rtcp;
    if (!s || this.closed) return;
    s.send(chunks as Buffer[], port, this.remoteAddress);
  }

  /** Bytes queued in the RTP socket, not yet sent. */
  get queuedBytes(): number {
    return this.#rtp?.getSendQueueSize() ?? 0;
  }

  protected onClose(): Promise<void> {
    const all = [...this.#sockets];
    this.#sockets.clear();
    this.#rtp = this.#rtcp = undefined;
    return Promise.all(
      all.map(
        (s) =>
          new Promise<void>((resolve) => {
            try {
              s.close(() => resolve());
            } catch {
              resolve();
            }
          }),
      ),
    ).then(() => undefined);
  }
}
