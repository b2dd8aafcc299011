// The bench's side of bench/viewer-process.ts: starts it and asks it things over IPC.
import { ChildRpc } from './child-rpc.js';
import path from 'node:path';

export type ViewerRequest = { id: number } & (
  | { cmd: 'openWebrtc'; base: string; src: string; count: number; timeoutMs: number }
  | { cmd: 'openWs'; url: string; count: number; timeoutMs: number }
  | { cmd: 'stats' }
  | { cmd: 'closeAll'; base?: string }
  | { cmd: 'exit' }
);

/** Counters of every viewer of the process, WebRTC ones first; `at` is the process's performance.now(). */
export interface ViewerStats {
  at: number;
  packets: number[];
  bytes: number[];
  /** WebRTC viewers only. */
  frames: number[];
  /** The stream each WebRTC viewer watches (requests may run at once: completion order). */
  srcs: string[];
  lost: number[];
  open: number;
  /** WebRTC connection attempts repeated (see connectViewer). */
  retries: number;
}

/** What the viewers received between two readings of their counters. */
export interface Received {
  /** Per viewer, in the order of ViewerStats (frames: WebRTC viewers only). */
  pktPerSec: number[];
  fps: number[];
  mbitPerSec: number[];
  /** Over all viewers. */
  packets: number;
  bytes: number;
  lost: number;
  seconds: number;
}

export function receivedBetween(a: ViewerStats, z: ViewerStats): Received {
  const seconds = (z.at - a.at) / 1000;
  const delta = (zs: number[], as: number[]) => zs.map((x, i) => x - as[i]!);
  const sum = (xs: number[]) => xs.reduce((acc, x) => acc + x, 0);
  const packets = delta(z.packets, a.packets);
  const bytes = delta(z.bytes, a.bytes);
  return {
    pktPerSec: packets.map((p) => p / seconds),
    fps: delta(z.frames, a.frames).map((f) => f / seconds),
    mbitPerSec: bytes.map((b) => (b * 8) / seconds / 1e6),
    packets: sum(packets),
    bytes: sum(bytes),
    lost: sum(delta(z.lost, a.lost)),
    seconds,
  };
}

/** bench/viewer-process.ts: WebRTC and WebSocket viewers in a process of their own. */
export class ViewerProcess extends ChildRpc<ViewerRequest> {
  static async start(): Promise<ViewerProcess> {
    const vp = new ViewerProcess(path.join(import.meta.dirname, 'viewer-process.ts'), 'viewer process');
    await vp.ready();
    return vp;
  }
}
