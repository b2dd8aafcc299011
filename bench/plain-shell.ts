// What the plain senders (plain-werift-server.ts, plain-ndc-server.ts) share: the clip packetized
// once with camrelay's packetizer and played at its frame rate, the WHEP-like HTTP answerer that
// camrelay's viewers (bench/ndc-viewer.ts) talk to, Node's metrics at GET /metrics as camrelay
// serves them, and the process's lifetime (it ends with its parent's stdin). Each sender brings
// only what its library does with an offer and a frame.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { EVENT_LOOP_SAMPLE_MS } from '../src/api/metrics.js';
import { packetizeH264, type RtpPayload } from '../src/rtp/h264-packetizer.js';
import { readAccessUnits } from './clip.js';

export interface PlainFrame {
  payloads: RtpPayload[];
  keyframe: boolean;
  timestamp: number;
}

export interface PlainPeers {
  /** Answers an offer (SDP) with a complete answer; the id names the peer in DELETE. */
  answer(offer: string, id: string): Promise<string>;
  /** Ends a peer; false when there is no such peer. */
  close(id: string): boolean;
  /** Sends one frame to every peer that can take it. */
  send(frame: PlainFrame): void;
  /** Everything ends: the process exits once this settles. */
  shutdown(): Promise<void>;
}

/** Extra GET routes: answers and returns true when the path is its own. */
export type PlainRoute = (url: URL, res: http.ServerResponse) => boolean;

export function parseArgs(script: string): { file: string; fps: number } {
  const [file, fps] = process.argv.slice(2);
  if (!file) throw new Error(`usage: ${script} <clip.h264> <fps>`);
  return { file, fps: Number(fps ?? 25) };
}

export function servePlain(file: string, fps: number, peers: PlainPeers, route?: PlainRoute): void {
  const frames = readAccessUnits(file).map((au) => packetizeH264(au.nals));
  const t0 = performance.now();
  let n = 0;
  const loop = () => {
    const payloads = frames[n % frames.length]!;
    peers.send({ payloads, keyframe: payloads.some(isIdr), timestamp: (n * Math.round(90000 / fps)) >>> 0 });
    n++;
    setTimeout(loop, Math.max(0, t0 + (n * 1000) / fps - performance.now()));
  };
  loop();
  // Node's own figures, collected as camrelay collects them (src/api/metrics.ts), so that the
  // fan-out compares event-loop lag, heap and external memory like for like.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/api/webrtc') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = randomBytes(9).toString('base64url');
        peers.answer(Buffer.concat(chunks).toString(), id).then(
          (sdp) => {
            res.writeHead(201, { 'Content-Type': 'application/sdp', Location: `/api/webrtc?id=${id}` });
            res.end(sdp);
          },
          (e: unknown) => {
            res.writeHead(400);
            res.end(String(e));
          },
        );
      });
      return;
    }
    if (req.method === 'DELETE' && url.pathname === '/api/webrtc') {
      res.writeHead(peers.close(url.searchParams.get('id') ?? '') ? 200 : 404);
      res.end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      });
      return;
    }
    if (req.method === 'GET' && route?.(url, res)) return;
    res.writeHead(404);
    res.end();
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    console.log(JSON.stringify({ event: 'listening', port: typeof a === 'object' && a ? a.port : 0 }));
  });
  const end = () => void Promise.race([peers.shutdown(), new Promise((r) => setTimeout(r, 3000))]).finally(() => process.exit(0));
  // Our parent holds stdin: when it goes, so do we.
  process.stdin.resume();
  process.stdin.on('end', end);
  process.on('SIGTERM', end);
}

/** An IDR slice, alone or as the first fragment of an FU-A. */
function isIdr(p: RtpPayload): boolean {
  const b = p.head.length ? p.head : p.body;
  const t = b[0]! & 0x1f;
  return t === 5 || (t === 28 && (b[1]! & 0x1f) === 5);
}
