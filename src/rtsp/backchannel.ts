import { randomBytes } from 'node:crypto';
import type { Backchannel } from '../core/backchannel.js';
import type { Codec } from '../core/media.js';
import type { RtspClientConnection } from './client-connection.js';

// The ONVIF backchannel of one camera session (ONVIF Streaming Specification 5.3): RTP we send on
// the interleaved channel its SETUP answered, with our own SSRC and sequence numbers, in the
// payload type the camera's SDP gave it. Owned by the RtspClient; it dies with the connection.

/** Bytes the socket may hold unsent before backchannel packets are dropped (~4 s of G.711). */
const MAX_QUEUED = 32 * 1024;

export class RtspBackchannel implements Backchannel {
  readonly counters = { packets: 0, bytes: 0, dropped: 0 };
  readonly #ssrc = randomBytes(4).readUInt32BE(0);
  #seq = randomBytes(2).readUInt16BE(0);

  constructor(
    private readonly conn: RtspClientConnection,
    readonly channel: number,
    readonly payloadType: number,
    readonly codec: Codec,
  ) {}

  send(payload: Buffer, timestamp: number, marker: boolean): void {
    const packet = Buffer.allocUnsafe(12 + payload.length);
    packet[0] = 0x80;
    packet[1] = (marker ? 0x80 : 0) | (this.payloadType & 0x7f);
    packet.writeUInt16BE(this.#seq, 2);
    packet.writeUInt32BE(timestamp >>> 0, 4);
    packet.writeUInt32BE(this.#ssrc, 8);
    payload.copy(packet, 12);
    if (!this.conn.writeInterleaved(this.channel, packet, MAX_QUEUED)) {
      this.counters.dropped++;
      return;
    }
    this.#seq = (this.#seq + 1) & 0xffff;
    this.counters.packets++;
    this.counters.bytes += payload.length;
  }
}
