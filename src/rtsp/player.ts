// The contract between the RTSP server (which speaks the protocol on a connection) and the output
// that feeds one player (src/outputs/rtsp.ts): the server lives below the outputs, so it only
// knows this interface and a factory handed to it.
import type { Socket } from 'node:net';
import type { MediaRequest } from '../core/media.js';
import type { Owned } from '../core/owned.js';
import type { TransportSpec } from './transport.js';

/** The player's TCP connection, for RTP interleaved on it. */
export interface PlayerSink {
  /** Writes the chunks in order, as one batch. */
  write(chunks: readonly Buffer[]): void;
  /** Bytes accepted but not yet handed to the kernel: a player that cannot keep up grows it. */
  readonly writableLength: number;
}

/** A player's TCP socket as its sink: one batch, one writev (the RTP headers and the shared payloads are not copied together). */
export function socketSink(socket: Socket): PlayerSink {
  return {
    write: (chunks) => {
      if (socket.destroyed) return;
      socket.cork();
      for (const c of chunks) socket.write(c);
      socket.uncork();
    },
    get writableLength() {
      return socket.writableLength;
    },
  };
}

export interface PlayerContext {
  /** The stream name, decoded from the URL. */
  stream: string;
  request: MediaRequest;
  /** Our own transcode reading the stream back: it must not keep the stream alive. */
  internal?: boolean;
  /** The client's IP address (IPv4-mapped addresses unwrapped) and ip:port for logs. */
  remoteAddress: string;
  remote: string;
  /** The server address the client connected to: UDP ports are bound there. */
  localAddress: string;
  userAgent?: string;
  sink: PlayerSink;
  /** No request or RTCP from the client for this long closes the session. */
  sessionTimeoutMs: number;
  /** The most a TCP player may have unsent before it is dropped. */
  maxSendBuffer: number;
}

export interface PlayerReply {
  status: number;
  /** The reason phrase, when it says more than the standard one. */
  reason?: string;
  headers?: Record<string, string>;
}

/**
 * One player's session, created at DESCRIBE and owned by the RtspServerConnection it came on. It may
 * close by itself (session timeout, a player that cannot keep up, its stream removed); the
 * connection then ends too.
 */
export interface RtspPlayer extends Owned {
  readonly id: string;
  /** Resolves with the SDP once the stream is live; rejects with a PlayError. */
  describe(): Promise<string>;
  setup(url: string, transports: TransportSpec[]): Promise<PlayerReply>;
  play(): PlayerReply;
  pause(): PlayerReply;
  /** Something arrived from the client (a request, RTCP): the session is alive. */
  touch(): void;
  /** Data on interleaved `channel` from the client (RTCP); false when the channel is not ours. */
  interleaved(channel: number): boolean;
}

export interface PlayerFactory {
  /** A new player for `ctx.stream`, or undefined when there is no such stream. */
  open(ctx: PlayerContext): RtspPlayer | undefined;
}

/** A DESCRIBE (or SETUP) that cannot be served, with the RTSP status to answer. */
export class PlayError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PlayError';
  }
}
