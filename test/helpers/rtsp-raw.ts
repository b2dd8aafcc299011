// Raw RTSP exchanges on a TCP socket, for tests that send what no real client would (bad bytes,
// slow bytes, many connections) and need to see exactly what the server answered and when it hung up.
import { connect, type Socket } from 'node:net';
import { RtspMessageReader, type RtspResponse } from '../../src/rtsp/message.js';

export interface RawExchange {
  responses: RtspResponse[];
  /** The server closed the connection (or reset it) before the deadline. */
  closed: boolean;
  /** ms from the first write to the close, if it closed. */
  closedAfterMs?: number;
  /** The reader could not parse what the server sent (after `responses`). */
  unparsable?: string;
}

/** Opens a connection, writes `bytes`, and collects answers until the server closes or `ms` passes. */
export function rawExchange(port: number, bytes: Buffer | string, ms: number, until?: (r: RtspResponse[]) => boolean): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const reader = new RtspMessageReader({ maxHeaderBytes: 64 * 1024, maxBodyBytes: 256 * 1024 });
    const out: RawExchange = { responses: [], closed: false };
    const started = performance.now();
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const timer = setTimeout(finish, ms);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const item of reader.push(chunk)) if (item.type === 'response') out.responses.push(item);
      } catch (e) {
        out.unparsable = (e as Error).message;
      }
      if (until?.(out.responses)) finish();
    });
    socket.once('close', () => {
      out.closed = true;
      out.closedAfterMs = performance.now() - started;
      finish();
    });
    socket.once('connect', () => socket.write(bytes));
  });
}

/** OPTIONS on a fresh connection: the status, or undefined when the server did not answer in `ms`. */
export async function probeOptions(port: number, ms = 3000): Promise<number | undefined> {
  const r = await rawExchange(port, `OPTIONS rtsp://127.0.0.1:${port}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n`, ms, (rs) => rs.length > 0);
  return r.responses[0]?.status;
}

/** A connection that stays open until closed by the test; `gone` settles when the server drops it. */
export function openSocket(port: number): Promise<{ socket: Socket; gone: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const opened = performance.now();
    const gone = new Promise<number>((r) => socket.once('close', () => r(performance.now() - opened)));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, gone }));
    socket.once('error', reject);
  });
}

/** A connection that asks OPTIONS every `everyMs`: it holds no session but is never idle. */
export async function chattySocket(port: number, everyMs = 200): Promise<{ socket: Socket; gone: Promise<number>; stop(): void }> {
  const s = await openSocket(port);
  let cseq = 0;
  s.socket.on('data', () => {});
  const ask = () => {
    if (!s.socket.destroyed) s.socket.write(`OPTIONS * RTSP/1.0\r\nCSeq: ${++cseq}\r\n\r\n`);
  };
  ask();
  const t = setInterval(ask, everyMs);
  s.gone.finally(() => clearInterval(t));
  return {
    ...s,
    stop: () => {
      clearInterval(t);
      s.socket.destroy();
    },
  };
}
