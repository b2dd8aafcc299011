import dgram from 'node:dgram';
import { SourceError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Owned } from '../core/owned.js';
import { bindRtpPortPair, closeUdpSocket } from './rtp-port-pair.js';

// RTP over UDP for one track (RFC 2326 12.39, RFC 3550 11): an even port for RTP and the next one
// for RTCP, bound on the address our RTSP connection uses. Only datagrams from the camera's address
// are taken: anyone on the network could send to a port they guess.

/** Camera keyframes arrive as bursts; a larger buffer (as far as net.core.rmem_max allows) drops fewer. */
const RECV_BUFFER = 2 * 1024 * 1024;

export type UdpPacketHandler = (kind: 'rtp' | 'rtcp', msg: Buffer) => void;

/** Two bound UDP sockets; emits nothing itself: packets go to the handler given to listen(). */
export class CameraUdpPair extends Owned {
  #dropped = 0;

  private constructor(
    readonly rtp: dgram.Socket,
    readonly rtcp: dgram.Socket,
    private readonly log: Logger,
  ) {
    // The kind keeps its old name: /api/debug/objects shows it, and tests count it.
    super('RtspUdpPortPair');
    for (const s of [rtp, rtcp]) s.on('error', (e) => this.log.warn({ err: e.message }, 'UDP socket error'));
  }

  /** Binds an even/odd port pair on `address`; rejects with a SourceError after repeated clashes. */
  static async open(address: string, log: Logger): Promise<CameraUdpPair> {
    try {
      const { rtp, rtcp } = await bindRtpPortPair(address, { recvBufferSize: RECV_BUFFER });
      return new CameraUdpPair(rtp, rtcp, log);
    } catch {
      throw new SourceError(`cannot bind a UDP port pair on ${address}`);
    }
  }

  get rtpPort(): number {
    return this.rtp.address().port;
  }
  get rtcpPort(): number {
    return this.rtcp.address().port;
  }

  /** Delivers datagrams from `source` (the camera's IP) to `onPacket`; others are dropped and counted. */
  listen(source: string, onPacket: UdpPacketHandler): void {
    const take = (kind: 'rtp' | 'rtcp') => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (this.closed) return;
      if (rinfo.address !== source) {
        if (this.#dropped++ === 0) this.log.warn({ from: rinfo.address, expected: source }, 'dropping UDP datagrams not sent by the camera');
        return;
      }
      onPacket(kind, msg);
    };
    this.rtp.on('message', take('rtp'));
    this.rtcp.on('message', take('rtcp'));
  }

  protected onClose(): Promise<void> {
    return Promise.all([closeUdpSocket(this.rtp), closeUdpSocket(this.rtcp)]).then(() => undefined);
  }
}
