// The bench's side of bench/mse-viewer-process.ts: starts it and asks it things over IPC.
import { ChildRpc } from './child-rpc.js';
import path from 'node:path';

export type MseRequest = { id: number } & (
  | { cmd: 'open'; url: string; count: number; timeoutMs: number }
  | { cmd: 'join'; url: string; timeoutMs: number }
  | { cmd: 'stats' }
  | { cmd: 'closeAll' }
  | { cmd: 'exit' }
);

/** Bytes each viewer has read so far; `at` is the process's performance.now(). */
export interface MseStats {
  at: number;
  bytes: number[];
  open: number;
}

/** bench/mse-viewer-process.ts: MSE viewers in a process of their own. */
export class MseViewers extends ChildRpc<MseRequest> {
  static async start(): Promise<MseViewers> {
    const vp = new MseViewers(path.join(import.meta.dirname, 'mse-viewer-process.ts'), 'mse viewer process');
    await vp.ready();
    return vp;
  }
}
