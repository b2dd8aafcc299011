// The server side of RTSP's UDP transport for one session: an RTP port and the RTCP port right
// above it (RFC 3550 11: RTP on an even port, RTCP on the next), bound on the address the player
// connected to. RTP goes only to the player's own address (never to a Transport `destination`).
import type { Socket } from 'node:dgram';
import { Owned } from '../core/owned.js';
import { bindRtpPortPair, closeUdpSocket } from './rtp-port-pair.js';

export type UdpChannel = 'rtp' | 'rtcp';

/**
 * Owns two UDP sockets. Events: 'packet' (channel: UdpChannel) for each datagram from the
 * player's address, which is all the session needs to know (it is alive).
 */
export class PlayerUdpPair extends Owned {
  #rtp: Socket | undefined;
  #rtcp: Socket | undefined;
  /** Every socket made, bound or not, so close() misses none. */
  #sockets = new Set<Socket>();
  #bound: Promise<void> | undefined;

  constructor(
    private readonly localAddress: string,
    private readonly remoteAddress: string,
  ) {
    // The kind keeps its old name: /api/debug/objects shows it, and tests count it.
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
    const { rtp, rtcp } = await bindRtpPortPair(this.localAddress, {
      sockets: this.#sockets,
      // A send error (the player's port closed) is not the session's end: its own timeout is.
      setup: (s) => s.on('error', () => undefined),
      closed: () => this.closed,
    });
    // close() may have come while the result was on its way here; it closed both already.
    if (this.closed) throw new Error('UDP ports closed while binding');
    [this.#rtp, this.#rtcp] = [rtp, rtcp];
    this.#receive(rtp, 'rtp');
    this.#receive(rtcp, 'rtcp');
  }

  #receive(s: Socket, channel: UdpChannel): void {
    s.on('message', (_msg, rinfo) => {
      if (rinfo.address === this.remoteAddress || rinfo.address === `::ffff:${this.remoteAddress}`) this.emit('packet', channel);
    });
  }

  /** Sends one datagram made of `chunks` to the player's `port`. */
  send(channel: UdpChannel, chunks: readonly Buffer[], port: number): void {
    const s = channel === 'rtp' ? this.#rtp : this.#rtcp;
    if (!s || this.closed) return;
    try {
      s.send(chunks as Buffer[], port, this.remoteAddress);
    } catch {
      // dgram throws synchronously on a bad port or address: that player's datagram is lost, as
      // UDP may lose it anyway; called from frame delivery and timers, it must not throw there.
    }
  }

  /** Bytes queued in the RTP socket, not yet sent. */
  get queuedBytes(): number {
    return this.#rtp?.getSendQueueSize() ?? 0;
  }

  protected onClose(): Promise<void> {
    const all = [...this.#sockets];
    this.#sockets.clear();
    this.#rtp = this.#rtcp = undefined;
    return Promise.all(all.map(closeUdpSocket)).then(() => undefined);
  }
}
