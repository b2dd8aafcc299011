// Binding RTP's UDP port pair (RFC 3550 11: RTP on an even port, RTCP on the next one), shared by
// the client (receiving from a camera) and the server (sending to a player). The OS picks any free
// port; we then take its even/odd neighbour, and start over with another port if that one is taken.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

const BIND_ATTEMPTS = 20;

export interface RtpPortPair {
  rtp: Socket;
  rtcp: Socket;
}

export interface BindPairOptions {
  recvBufferSize?: number;
  /**
   * Every socket made is in here until it is given up, bound or not: the caller owns them and
   * closes what is left in its close(), even in the middle of binding.
   */
  sockets?: Set<Socket>;
  /** Gets each new socket before it binds (to add the caller's 'error' listener). */
  setup?: (s: Socket) => void;
  /** The caller was closed: stop binding and reject. */
  closed?: () => boolean;
}

/** Binds an even/odd port pair on `address`; rejects after repeated clashes or once `closed()`. */
export async function bindRtpPortPair(address: string, opts: BindPairOptions = {}): Promise<RtpPortPair> {
  const sockets = opts.sockets ?? new Set<Socket>();
  const make = (): Socket => {
    const s = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', recvBufferSize: opts.recvBufferSize });
    opts.setup?.(s);
    sockets.add(s);
    return s;
  };
  const drop = (s: Socket): Promise<void> => {
    sockets.delete(s);
    return closeUdpSocket(s);
  };
  const cancelled = () => new Error('UDP ports closed while binding');

  let last: Error | undefined;
  for (let i = 0; i < BIND_ATTEMPTS; i++) {
    if (opts.closed?.()) throw cancelled();
    const a = make();
    let b: Socket | undefined;
    try {
      await bindSocket(a, address, 0);
      if (opts.closed?.()) throw cancelled();
      const port = a.address().port;
      const other = port % 2 === 0 ? port + 1 : port - 1;
      if (other <= 0 || other >= 65536) throw new Error(`port ${port} has no neighbour`);
      b = make();
      await bindSocket(b, address, other);
      if (opts.closed?.()) throw cancelled();
      // Whichever of the two is even carries RTP.
      return port % 2 === 0 ? { rtp: a, rtcp: b } : { rtp: b, rtcp: a };
    } catch (e) {
      await Promise.all([drop(a), b && drop(b)]);
      last = e instanceof Error ? e : new Error(String(e));
      if (opts.closed?.()) throw last;
    }
  }
  throw new Error(`no free UDP port pair on ${address}: ${last?.message ?? 'unknown error'}`);
}

function bindSocket(s: Socket, address: string, port: number): Promise<void> {
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
    s.bind({ address, port, exclusive: true }, () => done());
  });
}

/** Closes `s` and waits for it; one already closed (or never bound) resolves at once. */
export function closeUdpSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
