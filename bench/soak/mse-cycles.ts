// One MSE viewer cycle over /api/ws as go2rtc's player speaks it: {"type":"mse"} with go2rtc's
// codec list, the {"type":"mse"} answer, the init segment and at least one fragment (binary
// messages), then the socket closed. The cycle ends when camrelay has logged the end of that
// socket ('ws session ended', found through the User-Agent the cycle names itself with).
//
// A 'cold' cycle finds the stream idle (the camera started for it and, once it is the last viewer
// to leave, released); a 'warm' one joins while another viewer holds the stream, so it gets the
// cached GOP at once. The harness runs the 100 cycles in rounds of 10: the first of a round is
// cold and holds the stream while the other nine come and go, so that the muxer's release path
// runs 10 times without paying a camera start 100 times.
import { WebSocket, type RawData } from 'ws';
import type { CamrelayProcess } from '../../test/helpers/camrelay-process.js';
import { waitFor } from '../../test/helpers/wait.js';

export const MSE_CODECS = 'avc1.640029,mp4a.40.2,opus';
export const MSE_ROUND = 10;
export type MseKind = 'cold' | 'warm';

export class MseViewer {
  readonly ws: WebSocket;
  readonly userAgent: string;
  readonly texts: { type: string; value?: unknown }[] = [];
  readonly binary: Buffer[] = [];
  readonly closed: Promise<void>;
  /** ms from the socket's creation to its first fragment (the binary message after the init). */
  firstFragmentMs: number | undefined;
  readonly #startedAt = performance.now();

  constructor(port: number, src: string, userAgent: string) {
    this.userAgent = userAgent;
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws?src=${encodeURIComponent(src)}`, { headers: { 'User-Agent': userAgent } });
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.ws.once('close', () => resolve()));
    this.ws.on('open', () => this.ws.send(JSON.stringify({ type: 'mse', value: MSE_CODECS })));
    this.ws.on('message', (d: RawData, isBinary: boolean) => {
      const b = Buffer.isBuffer(d) ? d : Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d);
      if (!isBinary) {
        try {
          this.texts.push(JSON.parse(b.toString()) as { type: string; value?: unknown });
        } catch {
          // not JSON: counted by nothing, the cycle fails on the missing answer
        }
        return;
      }
      this.binary.push(b);
      if (this.binary.length === 2) this.firstFragmentMs = performance.now() - this.#startedAt;
    });
  }

  /** The answer, the init segment and a fragment, within `ms`. */
  async playing(ms: number): Promise<void> {
    await waitFor('the mse answer, the init segment and a fragment', () => this.ws.readyState === WebSocket.CLOSED || this.binary.length >= 2, ms, 5);
    const err = this.texts.find((t) => t.type === 'error');
    if (err) throw new Error(`camrelay answered ${JSON.stringify(err)}`);
    if (this.binary.length < 2) throw new Error('the socket closed before the init and a fragment');
    if (this.texts[0]?.type !== 'mse') throw new Error(`first text message ${JSON.stringify(this.texts[0])}, not the mse answer`);
    if (this.binary[0]!.subarray(4, 8).toString() !== 'ftyp') throw new Error('the first binary message is not the init segment');
    if (this.binary[1]!.subarray(4, 8).toString() !== 'moof') throw new Error('the second binary message is not a fragment');
  }

  close(): void {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
  }
}

export interface MseCycle {
  viewer: MseViewer;
  /** Resolves once camrelay has logged the end of the cycle's socket. */
  ended: (ms: number) => Promise<void>;
}

/** Opens a viewer and waits for its media; the caller closes it (now, or at the end of its round). */
export async function mseCycle(app: CamrelayProcess, i: number, d: { mediaMs: number }): Promise<MseCycle> {
  const from = app.logs.length;
  const ua = `camrelay-soak-mse-${process.pid}-${i}`;
  const viewer = new MseViewer(app.port, 'demo', ua);
  try {
    await viewer.playing(d.mediaMs);
    const connected = await app.waitLog((l) => l.msg === 'ws connected' && l.user_agent === ua, d.mediaMs, from);
    const ws = connected.ws;
    const ended = async (ms: number) => {
      await app.waitLog((l) => l.msg === 'ws session ended' && l.ws === ws, ms, from);
    };
    return { viewer, ended };
  } catch (e) {
    viewer.close();
    throw e;
  }
}
