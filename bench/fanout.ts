// Fan-out: one 1080p camera to N WebRTC viewers held by another process. camrelay's CPU (from
// /proc, every thread), RSS, and what each viewer received, over fixed windows once every
// viewer has its first keyframe. A fresh camrelay per N, so RSS is not what a previous N left.
// With werift, "plain werift" (bench/plain-werift-server.ts) runs the same viewers as the
// yardstick of the issue's werift target. Full runs end with one profiled camrelay per backend
// at the largest N (node --cpu-prof; its CPU is not one of the figures).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EVENT_LOOP_SAMPLE_MS } from '../src/api/metrics.js';
import { Camrelay, metricValue } from './camrelay.js';
import { CACHE, describeClip } from './clip.js';
import { fmt, median, MiB, sleep, type BackendChoice, type BenchContext } from './context.js';
import { monotonicMicros, newestProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { PlainSender } from './plain-sender.js';
import { CpuWindow, rssBytes } from './proc.js';
import { machineLine, table } from './report.js';
import { receivedBetween, ViewerProcess, type Received, type ViewerStats } from './viewers.js';

export interface FanoutRow {
  n: number;
  /** The sender's CPU, % of one core (median of the windows). */
  cpu: number;
  rssMiB: number;
  /** RSS before the first viewer (camrelay started, stream idle). */
  rssIdleMiB: number;
  heapUsedMiB?: number;
  externalMiB?: number;
  /** Per viewer, averaged over viewers. */
  pktPerSec: number;
  /** The least any viewer got. */
  minPktPerSec: number;
  fps: number;
  mbitPerViewer: number;
  lossPercent: number;
  lagP99Ms?: number;
  viewersCpu: number;
  cameraCpu: number;
  /** Viewer offers repeated (see connectViewer). */
  retries: number;
}

export interface FanoutResult {
  backend: BackendChoice;
  rows: FanoutRow[];
  /** Counts that failed twice, with the last error. */
  failed: { n: number; error: string }[];
  /** werift only: the same viewers on plain werift. */
  plain?: FanoutRow[];
  profile?: { n: number; summary: ProfileSummary; file: string };
}

export const FANOUT_KEY = 'fanout';

interface Settings {
  counts: number[];
  windows: number;
  windowMs: number;
  settleMs: number;
  profile: boolean;
}

const settings = (quick: boolean): Settings =>
  quick
    ? { counts: [1, 10], windows: 1, windowMs: 4000, settleMs: 1000, profile: false }
    : { counts: [1, 10, 25, 50], windows: 3, windowMs: 10000, settleMs: 3000, profile: true };

/** What the viewers watch: camrelay, or plain werift. */
interface Sender {
  pid: number;
  base: string;
  metrics?: () => Promise<string>;
  /** What the sender said about trouble (camrelay's log). */
  problemsSince?: (from: number) => string;
  stop(): Promise<void>;
}

export async function runFanout(ctx: BenchContext): Promise<string> {
  const s = settings(ctx.quick);
  const results: FanoutResult[] = [];
  const max = Math.max(...s.counts);
  for (const b of ctx.backends) {
    const result: FanoutResult = { backend: b, rows: [], failed: [] };
    for (const n of s.counts) {
      ctx.log(`fan-out ${b.label}: ${n} viewer(s)`);
      const r = await twice(ctx, result, n, () => oneCount(ctx, () => Camrelay.start({ streams: { cam: ctx.camera.url() }, backend: b.backend }), n, s));
      if (!r) continue;
      result.rows.push(r);
      ctx.log(`  camrelay ${fmt(r.cpu)}% of a core, RSS ${fmt(r.rssMiB)} MiB, ${fmt(r.pktPerSec, 0)} pkt/s per viewer (min ${fmt(r.minPktPerSec, 0)}), loss ${fmt(r.lossPercent, 2)}%`);
    }
    if (b.label.startsWith('werift')) {
      result.plain = [];
      for (const n of [1, max]) {
        ctx.log(`fan-out plain werift: ${n} viewer(s)`);
        const r = await twice(ctx, result, n, () => oneCount(ctx, () => PlainSender.start('werift', ctx.clip), n, s));
        if (!r) continue;
        result.plain.push(r);
        ctx.log(`  plain werift ${fmt(r.cpu)}% of a core, ${fmt(r.pktPerSec, 0)} pkt/s per viewer`);
      }
    }
    if (s.profile) {
      ctx.log(`fan-out ${b.label}: ${max} viewers under --cpu-prof`);
      result.profile = await profiled(ctx, b, max, s).catch((e: unknown) => {
        ctx.log(`  the profiled run failed: ${String(e)}`);
        result.failed.push({ n: max, error: `profiled run: ${String(e)}` });
        return undefined;
      });
    }
    results.push(result);
  }
  ctx.shared.set(FANOUT_KEY, results);
  return report(ctx, s, results);
}

/** A run that fails is tried once more on fresh processes; a second failure is noted, not thrown. */
async function twice<T>(ctx: BenchContext, result: FanoutResult, n: number, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (e) {
    ctx.log(`  failed (${String(e)}); once more`);
    try {
      return await run();
    } catch (e2) {
      ctx.log(`  failed again: ${String(e2)}`);
      result.failed.push({ n, error: String(e2) });
      return undefined;
    }
  }
}

async function oneCount(ctx: BenchContext, start: () => Promise<Sender>, n: number, s: Settings, onWindow?: (from: number, to: number) => void): Promise<FanoutRow> {
  const sender = await start();
  const viewers = await ViewerProcess.start();
  try {
    const rssIdle = rssBytes(sender.pid) ?? NaN;
    const opened = await viewers.ask<ViewerStats>({ cmd: 'openWebrtc', base: sender.base, src: 'cam', count: n, timeoutMs: 30000 }, 300000);
    await sleep(s.settleMs);
    await sender.metrics?.(); // resets the event-loop histogram: the lag below is the windows'
    const cpus: number[] = [];
    const vcpus: number[] = [];
    const ccpus: number[] = [];
    const per: Received[] = [];
    const from = monotonicMicros();
    for (let w = 0; w < s.windows; w++) {
      const a = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      const cpu = new CpuWindow(() => [sender.pid]);
      const vcpu = new CpuWindow(() => [viewers.pid]);
      const ccpu = new CpuWindow(() => (ctx.camera.pid ? [ctx.camera.pid] : []));
      await sleep(s.windowMs); // the measurement window itself
      cpus.push(cpu.read().percent);
      vcpus.push(vcpu.read().percent);
      ccpus.push(ccpu.read().percent);
      const z = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      if (z.open !== n) throw new Error(`${n - z.open} of ${n} viewers are no longer connected`);
      per.push(receivedBetween(a, z));
    }
    onWindow?.(from, monotonicMicros());
    const rss = rssBytes(sender.pid) ?? NaN;
    const m = sender.metrics ? await sender.metrics() : undefined;
    const metric = (name: string) => (m === undefined ? undefined : metricValue(m, name));
    const lag = metric('nodejs_eventloop_lag_p99_seconds');
    const heap = metric('nodejs_heap_size_used_bytes');
    const external = metric('nodejs_external_memory_bytes');
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    return {
      n,
      cpu: median(cpus),
      rssMiB: rss / MiB,
      rssIdleMiB: rssIdle / MiB,
      heapUsedMiB: heap === undefined ? undefined : heap / MiB,
      externalMiB: external === undefined ? undefined : external / MiB,
      pktPerSec: median(per.map((p) => mean(p.pktPerSec))),
      minPktPerSec: Math.min(...per.map((p) => Math.min(...p.pktPerSec))),
      fps: median(per.map((p) => mean(p.fps))),
      mbitPerViewer: median(per.map((p) => mean(p.mbitPerSec))),
      lossPercent: (100 * per.reduce((x, p) => x + p.lost, 0)) / Math.max(1, per.reduce((x, p) => x + p.lost + p.packets, 0)),
      // prom-client's histogram holds tick-to-tick times: the interval itself is no delay.
      lagP99Ms: lag === undefined ? undefined : Math.max(0, lag * 1000 - EVENT_LOOP_SAMPLE_MS),
      viewersCpu: median(vcpus),
      cameraCpu: median(ccpus),
      retries: opened.retries,
    };
  } catch (e) {
    throw new Error(`${String(e)}${sender.problemsSince ? `; ${sender.problemsSince(0)}` : ''}`);
  } finally {
    await viewers.ask({ cmd: 'closeAll', base: sender.base }).catch(() => undefined);
    await viewers.stop();
    await sender.stop();
  }
}

async function profiled(ctx: BenchContext, b: BackendChoice, n: number, s: Settings): Promise<FanoutResult['profile']> {
  const dir = path.join(CACHE, 'profiles', `fanout-${b.backend ?? 'default'}-${n}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let window: [number, number] = [0, 0];
  await oneCount(ctx, () => Camrelay.start({ streams: { cam: ctx.camera.url() }, backend: b.backend, cpuProfDir: dir }), n, { ...s, windows: 1 }, (from, to) => (window = [from, to]));
  const file = newestProfile(dir);
  if (!file) {
    ctx.log(`  no profile written in ${dir}`);
    return undefined;
  }
  return { n, summary: summarizeProfile(file, window[0], window[1]), file: path.relative(path.resolve(import.meta.dirname, '..'), file) };
}

/** RSS of a bare node, and of node running an empty file through tsx (how camrelay ran before it was bundled), in MiB. */
function runtimeRss(): { bare: number; tsx: number } {
  const probe = 'console.log(process.memoryUsage().rss)';
  const file = path.join(CACHE, 'rss-probe.ts');
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(file, `${probe}\n`);
  const run = (args: string[]) => Number(execFileSync(process.execPath, args, { encoding: 'utf8' }).trim()) / MiB;
  return { bare: run(['-e', probe]), tsx: run(['--import', 'tsx', file]) };
}

function report(ctx: BenchContext, s: Settings, results: FanoutResult[]): string {
  const rt = runtimeRss();
  const out: string[] = [
    '## Fan-out: one camera to N WebRTC viewers',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)}, served by gst-rtsp-server (test/helpers/gst-rtsp-server.py, pipeline h264-file: no encoding) and pulled by camrelay over RTSP/TCP.`,
    `Viewers: node-datachannel peers in one separate Node process, loopback, joining one after the other (offers without candidates, see bench/ndc-viewer.ts), each counting RTP packets (no decoding). For each N a fresh camrelay; the figures are taken once every viewer has a keyframe, after ${s.settleMs / 1000} s more, over ${s.windows} window(s) of ${s.windowMs / 1000} s: each CPU and rate figure is the median of those ${s.windows} window(s); RSS is read at the end ("idle": after start, before the first viewer).`,
    'CPU is user+system time from /proc/<pid>/stat (all threads), in % of one core. "Per added viewer" is (CPU at N − CPU at 1) / (N − 1); RSS likewise. Event-loop lag, heap and external memory are camrelay\'s own prom-client figures from /metrics (`nodejs_eventloop_lag_p99_seconds` over the windows, `nodejs_heap_size_used_bytes`, `nodejs_external_memory_bytes` at the end); the lag monitor samples every EVENT_LOOP_SAMPLE_MS (src/api/metrics.ts, 100 ms) and records tick-to-tick times, so the column is the p99 less that interval; a stall shorter than the interval counts only when a sample falls in it: the lag is a lower bound.',
    `For scale: on this machine a bare \`node\` process is ${fmt(rt.bare)} MiB resident, and \`node --import tsx\` running an empty file ${fmt(rt.tsx)} MiB (how camrelay ran before \`npm start\` ran a bundle: camrelay runs as that bundle here, scripts/build.mjs).`,
    '',
  ];
  const perAdded = (rows: FanoutRow[], x: FanoutRow, f: (r: FanoutRow) => number, d = 2) => {
    const one = rows.find((r) => r.n === 1);
    return one && x.n > 1 ? fmt((f(x) - f(one)) / (x.n - 1), d) : '–';
  };
  for (const r of results) {
    out.push(`### ${r.backend.label}`, '');
    out.push(
      table(
        ['viewers', 'CPU % (total)', 'CPU % per viewer', 'CPU % per added viewer', 'RSS MiB (idle)', 'RSS MiB per added viewer', 'heap / external MiB', 'pkt/s per viewer (min)', 'fps per viewer', 'Mbit/s per viewer', 'loss %', 'event-loop lag p99 ms', "viewers' process CPU %", 'camera CPU %'],
        r.rows.map((x) => [
          x.n,
          fmt(x.cpu),
          fmt(x.cpu / x.n, 2),
          perAdded(r.rows, x, (y) => y.cpu),
          `${fmt(x.rssMiB)} (${fmt(x.rssIdleMiB)})`,
          perAdded(r.rows, x, (y) => y.rssMiB),
          `${fmt(x.heapUsedMiB)} / ${fmt(x.externalMiB)}`,
          `${fmt(x.pktPerSec, 0)} (${fmt(x.minPktPerSec, 0)})`,
          fmt(x.fps),
          fmt(x.mbitPerViewer, 2),
          fmt(x.lossPercent, 2),
          fmt(x.lagP99Ms),
          fmt(x.viewersCpu),
          fmt(x.cameraCpu),
        ]),
      ),
      '',
    );
    for (const f of r.failed) out.push(`**${f.n} viewers: failed twice** (each on a fresh camrelay and viewer process): ${f.error.replace(/\s+/g, ' ')}`, '');
    const retried = r.rows.reduce((acc, x) => acc + x.retries, 0);
    if (retried) out.push(`${retried} viewer offer(s) were repeated because libdatachannel, as the viewer, rejected camrelay's answer (see bench/ndc-viewer.ts connectViewer).`, '');
    if (r.plain) {
      out.push(
        `Plain werift (bench/plain-werift-server.ts: the clip packetized once with camrelay's packetizer and written with \`RTCRtpSender.sendRtp\` to every connected werift peer at 25 fps; no RTSP, no stream): the least werift itself costs for the same viewers. It runs through tsx (~${fmt(rt.tsx - rt.bare, 0)} MiB of RSS that a bundle would not have, see "For scale" above); lag, heap and external memory are its own prom-client figures, collected as camrelay's are.`,
        '',
        table(
          ['viewers', 'CPU % (total)', 'CPU % per added viewer', 'RSS MiB', 'heap used / external MiB', 'pkt/s per viewer (min)', 'loss %', 'event-loop lag p99 ms'],
          r.plain.map((x) => [
            x.n,
            fmt(x.cpu),
            perAdded(r.plain!, x, (y) => y.cpu),
            fmt(x.rssMiB),
            `${fmt(x.heapUsedMiB)} / ${fmt(x.externalMiB)}`,
            `${fmt(x.pktPerSec, 0)} (${fmt(x.minPktPerSec, 0)})`,
            fmt(x.lossPercent, 2),
            fmt(x.lagP99Ms),
          ]),
        ),
        '',
      );
    }
    if (r.profile) {
      const p = r.profile.summary;
      out.push(
        `Profile (node --cpu-prof on src/ through tsx, ${r.profile.n} viewers, samples of one ${s.windowMs / 1000} s window only; the main thread, so native threads such as libdatachannel's are not in it): ${p.samples} samples, ${fmt(p.busyPercent)}% not idle. Busy samples by place: ${p.byPlace
          .slice(0, 8)
          .map((x) => `${x.place} ${fmt(x.percent)}%`)
          .join(', ')}. File: \`${r.profile.file}\` (not kept in git).`,
        '',
        table(
          ['function (self time)', '% of busy samples'],
          p.byFunction.map((x) => [`\`${x.fn}\``, fmt(x.percent)]),
        ),
        '',
      );
    }
  }
  return out.join('\n');
}
