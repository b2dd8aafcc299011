// The floor under camrelay's node-datachannel figures: what node-datachannel alone costs for the
// same fan-out (bench/plain-ndc-server.ts: the clip's frames to N viewers, no camrelay), and
// whether its sends could be spread over threads (bench/ndc-threads.ts). The targets for CPU per
// added viewer are camrelay's; this says how much of it the library alone takes on this machine.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { request } from '../test/helpers/http.js';
import { freeUdpPort } from './camrelay.js';
import { describeClip } from './clip.js';
import { fmt, median, sleep, type BenchContext } from './context.js';
import { THREAD_CASES } from './ndc-threads.js';
import type { FloorSamples } from './plain-ndc-server.js';
import { PlainSender } from './plain-sender.js';
import { CpuWindow } from './proc.js';
import { machineLine, percentile, table } from './report.js';
import { receivedBetween, ViewerProcess, type ViewerStats } from './viewers.js';

export const FLOOR_KEY = 'floor';

export interface FloorRow {
  n: number;
  /** The plain sender's CPU, all threads, % of one core. */
  cpu: number;
  samples: FloorSamples;
  /** Per viewer, averaged; the least any viewer got. */
  pktPerSec: number;
  minPktPerSec: number;
  lossPercent: number;
}

export interface FloorResult {
  rows: FloorRow[];
  /** Per case of ndc-threads.ts: whether it ran, or how the process ended. */
  threads: { case: string; outcome: string }[];
  /** CPU per added viewer from the first row to the last, % of one core. */
  perAdded?: { value: number; n: number };
  failed?: string;
}

/** (cpu at the largest N − cpu at 1) / (N − 1). */
export function floorPerAdded(rows: readonly FloorRow[]): FloorResult['perAdded'] {
  const one = rows.find((r) => r.n === 1);
  const top = rows.at(-1);
  return one && top && top.n > 1 ? { value: (top.cpu - one.cpu) / (top.n - 1), n: top.n } : undefined;
}

export async function runFloor(ctx: BenchContext): Promise<string> {
  const s = ctx.quick ? { counts: [1, 10], settleMs: 1000, seconds: 4 } : { counts: [1, 10, 50], settleMs: 3000, seconds: 20 };
  const result: FloorResult = { rows: [], threads: [] };
  if (!ctx.backends.some((b) => b.backend === 'node-datachannel')) {
    result.failed = 'node-datachannel is not among the backends of this run';
    ctx.shared.set(FLOOR_KEY, result);
    return `## The floor: node-datachannel alone\n\nNot measured: ${result.failed}.`;
  }
  for (const c of THREAD_CASES) {
    result.threads.push({ case: c, outcome: threadCase(c) });
    ctx.log(`floor: node-datachannel in ${c}: ${result.threads.at(-1)!.outcome}`);
  }
  try {
    await measureRows(ctx, s, result.rows);
  } catch (e) {
    result.failed = String(e);
    ctx.log(`floor: ${result.failed}`);
  }
  result.perAdded = floorPerAdded(result.rows);
  ctx.shared.set(FLOOR_KEY, result);
  return report(ctx, s, result);
}

async function measureRows(ctx: BenchContext, s: { counts: number[]; settleMs: number; seconds: number }, rows: FloorRow[]): Promise<void> {
  const sender = await PlainSender.start('node-datachannel', ctx.clip, [String(await freeUdpPort())]);
  const viewers = await ViewerProcess.start();
  try {
    let have = 0;
    for (const n of s.counts) {
      // Viewers join one after another and stay: each row adds to the last.
      await viewers.ask<ViewerStats>({ cmd: 'openWebrtc', base: sender.base, src: 'floor', count: n - have, timeoutMs: 30000 }, 300000);
      have = n;
      await sleep(s.settleMs);
      rows.push(await measureWindow(ctx, sender, viewers, n, s.seconds));
    }
  } finally {
    await viewers.ask({ cmd: 'closeAll', base: sender.base }).catch(() => undefined);
    await viewers.stop();
    await sender.stop();
  }
}

async function measureWindow(ctx: BenchContext, sender: PlainSender, viewers: ViewerProcess, n: number, seconds: number): Promise<FloorRow> {
  ctx.log(`floor: plain node-datachannel, ${n} viewer(s), ${seconds} s`);
  const a = await viewers.ask<ViewerStats>({ cmd: 'stats' });
  const cpu = new CpuWindow(() => [sender.pid]);
  const r = await request(`${sender.base}/floor?seconds=${seconds}`, { timeoutMs: (seconds + 10) * 1000 });
  const percent = cpu.read().percent;
  if (r.status !== 200) throw new Error(`GET /floor: HTTP ${r.status}: ${r.text}`);
  const z = await viewers.ask<ViewerStats>({ cmd: 'stats' });
  if (z.open !== n) throw new Error(`${n - z.open} of ${n} viewers are no longer connected`);
  const got = receivedBetween(a, z);
  const row: FloorRow = {
    n,
    cpu: percent,
    samples: JSON.parse(r.text) as FloorSamples,
    pktPerSec: got.pktPerSec.reduce((x, y) => x + y, 0) / got.pktPerSec.length,
    minPktPerSec: Math.min(...got.pktPerSec),
    lossPercent: (100 * got.lost) / Math.max(1, got.lost + got.packets),
  };
  ctx.log(`  ${fmt(row.cpu)}% of a core; frame sent p99 ${fmt(percentile(row.samples.last, 99), 2)} ms; ${fmt(usPerPacket(row.samples), 2)} µs per packet in a keyframe's fan-out`);
  return row;
}

/** Runs one case of ndc-threads.ts in a process of its own. */
function threadCase(c: string): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'ndc-threads.ts'), c], { encoding: 'utf8', timeout: 30000 });
  if (r.status === 0 && r.stdout.includes('"ok":true')) return 'ran';
  const why = r.stderr.split('\n').find((l) => /FATAL ERROR|Assertion|Error/.test(l))?.trim() ?? r.stderr.trim().split('\n')[0] ?? '';
  const end = r.error ? String(r.error) : r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
  return `failed (${end}${why ? `: ${why}` : ''})`;
}

/** µs of wall time per packet while a keyframe goes out to every viewer (the median keyframe). */
export function usPerPacket(w: FloorSamples): number {
  const per = w.fanOutMs.map((ms, i) => ({ us: (ms * 1000) / w.sends[i]!, key: w.keyframe[i]! })).filter((x) => x.key);
  return median(per.map((x) => x.us));
}

function report(ctx: BenchContext, s: { counts: number[]; seconds: number }, r: FloorResult): string {
  const rows = r.rows.map((x) => {
    const w = x.samples;
    return [
      x.n,
      fmt(x.cpu),
      fmt((w.mainThreadCpu * 1e6) / w.packetsOut, 2),
      fmt(usPerPacket(w), 2),
      fmt(percentile(w.last, 50), 2),
      fmt(percentile(w.last, 99), 2),
      fmt(percentile(w.lastKeyframes, 50), 2),
      fmt(percentile(w.lastKeyframes, 99), 2),
      `${fmt(x.pktPerSec, 0)} (${fmt(x.minPktPerSec, 0)})`,
      fmt(x.lossPercent, 2),
    ];
  });
  return [
    '## The floor: node-datachannel alone',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)}, packetized once at start with camrelay's packetizer (1200-byte payloads).`,
    `Sender: bench/plain-ndc-server.ts, a process with no camrelay in it: at 25 fps it sends each frame to every viewer, viewer after viewer, through the calls camrelay's backend makes per packet (RTP header into one reused buffer, \`Track.sendMessageBinary\` on a track with the SR reporter and NACK responder, every peer on one UDP port). No RTSP, no depacketizing, no slicing of the fan-out. Viewers: the fan-out benchmark's node-datachannel peers in a process of their own; they join one after another and stay, so each row adds to the one before. Each row: one window of ${s.seconds} s after ${ctx.quick ? 1 : 3} s of settling.`,
    `"Frame sent" is timed at the sender, for every (frame, viewer) pair: from the frame's first send to the return of the send of that viewer's marker packet, when the packet has left. It is the part of camrelay's relay latency (bench/relay.ts, measured at the viewers) that no code of camrelay's is in; camrelay's figure adds reading the camera, depacketizing, its own per-packet JavaScript and the viewers' receive path. CPU is the sender process's (all threads, /proc); "main thread per packet" is its main thread's CPU in the window over the packets it sent.`,
    '',
    table(
      ['viewers', 'CPU, % of a core', 'main thread CPU per packet out, µs', 'wall per packet in a keyframe\'s fan-out, µs', 'frame sent p50 ms', 'frame sent p99 ms', 'keyframes: sent p50 ms', 'keyframes: sent p99 ms', 'pkt/s per viewer (min)', 'loss %'],
      rows,
    ),
    '',
    r.perAdded ? `CPU per added viewer, 1 → ${r.perAdded.n} viewers: **${fmt(r.perAdded.value, 3)}%** of a core (camrelay's target for itself: ≤ 0.35%).` : 'CPU per added viewer: not measured.',
    r.failed ? `\nThe run failed: ${r.failed}` : '',
    '',
    'Spreading the sends over threads (bench/ndc-threads.ts: the addon loaded in the threads named, then each makes peer connections with a video track):',
    '',
    table(['threads using node-datachannel', 'outcome'], r.threads.map((t) => [t.case, t.outcome])),
    '',
  ].join('\n');
}
