// One track camrelay sends on with node-datachannel. A track with no packetizer sends what it is
// given as RTP (SRTP-protected, any SSRC), on the calling thread: nothing is queued in the library.
// The native track is made when the peer answers (its direction is known only then: a receive
// track may share the m-line), and bound here before it can open; until it opens, writes are dropped.
import type { Track } from 'node-datachannel';
import type { RtpOut, SendTrack } from './backend.js';

/** The peer a track sends for: a closed peer sends nothing, and each packet sent is news for its liveness. */
export interface SendingPeer {
  readonly closed: boolean;
  wrote(): void;
}

/** One sent m-line: writes RTP headers into one reused buffer and hands the packet to libdatachannel. */
export class NdcSendTrack implements SendTrack {
  #open = false;
  /**
   * Reused for every packet: the library copies it before send returns. Version and SSRC never
   * change, so they are written once, with each new buffer.
   */
  #buf = Buffer.allocUnsafeSlow(0);
  /**
   * The last view of #buf handed to the library, reused while packets keep that size (most
   * FU-A fragments of a frame have the same one): no Buffer object per packet.
   */
  #view = this.#buf;
  #track: Track | undefined;

  constructor(
    readonly ssrc: number,
    readonly payloadType: number,
    private readonly peer: SendingPeer,
  ) {
    this.#grow(1500);
  }

  /** The native track, once the answer made it. */
  bind(track: Track): void {
    this.#track = track;
  }

  opened(): void {
    if (this.#track) this.#open = true;
  }

  write(p: RtpOut): void {
    if (!this.#open || this.peer.closed) return;
    const headBytes = p.head.length;
    const size = 12 + headBytes + p.body.length;
    if (this.#buf.length < size) this.#grow(size);
    // Byte by byte rather than writeUInt16BE/32BE: Node's shared helpers check their arguments
    // and, called from every part of camrelay, run megamorphic; this is once per packet and viewer.
    const b = this.#buf;
    const seq = p.sequenceNumber;
    const ts = p.timestamp;
    b[1] = (p.marker ? 0x80 : 0) | this.payloadType;
    b[2] = seq >>> 8;
    b[3] = seq;
    b[4] = ts >>> 24;
    b[5] = ts >>> 16;
    b[6] = ts >>> 8;
    b[7] = ts;
    if (headBytes !== 0) b.set(p.head, 12);
    b.set(p.body, 12 + headBytes);
    if (this.#view.length !== size) this.#view = b.subarray(0, size);
    try {
      this.#track!.sendMessageBinary(this.#view);
    } catch {
      // The native side closed the track between its 'closed' event and ours: nothing to send to.
      this.#open = false;
      return;
    }
    this.peer.wrote();
  }

  #grow(size: number): void {
    const b = Buffer.allocUnsafeSlow(size);
    b[0] = 0x80;
    b.writeUInt32BE(this.ssrc >>> 0, 8);
    this.#buf = b;
    this.#view = b.subarray(0, 0);
  }
}
