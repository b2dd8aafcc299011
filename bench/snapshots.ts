// Snapshot bursts (issue 12): 150 GET /api/frame.jpeg at once on one stream, each on its own
// connection, with api.max_snapshots at its default (4). Varied sizes need a decoder each: at
// most 4 ffmpeg run, the rest are answered 503. Identical ones share one decode and all get the
// JPEG. Meanwhile GET /api is timed from another process (bench/api-sampler.ts), as Home
// Assistant's watchdog would see it, and camrelay's ffmpeg children are counted from /proc.
// Then a profiled camrelay (node --cpu-prof) takes the same varied bursts with no sampler, to
// say what one refused snapshot costs its main thread and where.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { waitFor } from '../test/helpers/wait.js';
import type { ApiSample } from './api-sampler.js';
import { Camrelay, metricValue } from './camrelay.js';
import { CACHE, describeClip } from './clip.js';
import { fmt, median, sleep, type BenchContext } from './context.js';
import { monotonicMicros, newestProfile } from './cpu-profile.js';
import { windowCost, type WindowCost } from './profile-window.js';
import { threadCpuSeconds } from './proc.js';
import { machineLine, percentile, table } from './report.js';

const BURST = 150;
/** camrelay's default api.max_snapshots, which the bench config leaves as it is. */
const CAP = 4;
const SAMPLER_PAUSE_MS = 10;

interface Answer {
  status: number;
  bytes: number;
  /** performance.now() when the answer had ended. */
  at: number;
}

interface Burst {
  statuses: Map<number, number>;
  /** First request sent → last answer ended. */
  totalMs: number;
  /** First request sent → last 503 ended (NaN with no 503). */
  refusedByMs: number;
  maxChildren: number;
  /** GET /api latencies of the samples sent during the burst. */
  api: number[];
  apiFailed: number;
  /** Distinct JPEGs among the 200s (by size in bytes; identical requests must share one). */
  distinctJpegs: number;
  /** camrelay's main-thread CPU (/proc, user + system) from the first request sent to the last 503 received. */
  refusedCpuMs: number;
  /** ffmpeg processes first seen before the last 503 arrived (their spawns are in that CPU). */
  spawnedBeforeLast503: number;
}

interface Latency {
  p50: number;
  p95: number;
  max: number;
  n: number;
}

/** camrelay's children named ffmpeg, from /proc (every thread's children file: spawn may run off the main thread). */
function ffmpegChildren(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let kids: string[];
    try {
      kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean);
    } catch {
      continue;
    }
    for (const k of kids) {
      try {
        if (readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'ffmpeg') out.push(Number(k));
      } catch {
        /* gone while we looked */
      }
    }
  }
  return out;
}

class Sampler {
  readonly samples: ApiSample[] = [];
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: ApiSample | { ready: true }) => {
      if ('ms' in m) this.samples.push(m);
    });
  }

  static async start(base: string): Promise<Sampler> {
    const child = fork(path.join(import.meta.dirname, 'api-sampler.ts'), [base, String(SAMPLER_PAUSE_MS)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const s = new Sampler(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('api sampler did not start within 20 s')), 20000);
      child.once('message', () => {
        clearTimeout(t);
        resolve();
      });
      child.once('exit', (code) => reject(new Error(`api sampler exited (${code})`)));
    });
    return s;
  }

  /** Samples sent inside [from, to] (epoch ms). */
  between(from: number, to: number): ApiSample[] {
    return this.samples.filter((s) => s.t >= from && s.t <= to);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.disconnect();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

function get(url: string): Promise<Answer> {
  return new Promise((resolve) => {
    let bytes = 0;
    const req = http.get(url, { agent: false, timeout: 30000 }, (res) => {
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, bytes, at: performance.now() }));
      res.once('error', () => resolve({ status: 0, bytes, at: performance.now() }));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve({ status: 0, bytes, at: performance.now() }));
  });
}

/** The stream idle again (camera connection gone) and no ffmpeg left: every burst starts from the same state. */
async function idle(ctx: BenchContext, relay: Camrelay): Promise<void> {
  await waitFor('the stream to be idle and every snapshot ffmpeg gone', () => ctx.camera.openConnections() === 0 && ffmpegChildren(relay.pid).length === 0, 20000);
}

/** 150 requests at once, `query(i)` each; children polled every 5 ms until the last answer. */
async function burst(ctx: BenchContext, relay: Camrelay, sampler: Sampler | undefined, query: (i: number) => string): Promise<Burst & { fromUs: number; refusedUs: number }> {
  await idle(ctx, relay);
  let maxChildren = 0;
  const firstSeen = new Map<number, number>();
  const poll = setInterval(() => {
    const kids = ffmpegChildren(relay.pid);
    maxChildren = Math.max(maxChildren, kids.length);
    for (const k of kids) if (!firstSeen.has(k)) firstSeen.set(k, performance.now());
  }, 5);
  const cpu0 = threadCpuSeconds(relay.pid, relay.pid) ?? NaN;
  let cpuAtRefused = NaN;
  const fromUs = monotonicMicros();
  const t0 = performance.now();
  const answers = await Promise.all(
    Array.from({ length: BURST }, (_, i) =>
      get(`${relay.base}/api/frame.jpeg?src=cam${query(i)}`).then((a) => {
        if (a.status === 503) cpuAtRefused = threadCpuSeconds(relay.pid, relay.pid) ?? NaN;
        return a;
      }),
    ),
  );
  clearInterval(poll);
  const t1 = Math.max(...answers.map((a) => a.at));
  const refused = answers.filter((a) => a.status === 503);
  const lastRefused = refused.length ? Math.max(...refused.map((a) => a.at)) : NaN;
  const statuses = new Map<number, number>();
  for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  const samples = sampler?.between(performance.timeOrigin + t0, performance.timeOrigin + t1) ?? [];
  return {
    statuses,
    totalMs: t1 - t0,
    refusedByMs: lastRefused - t0,
    maxChildren,
    api: samples.filter((s) => s.status === 200).map((s) => s.ms),
    apiFailed: samples.filter((s) => s.status !== 200).length,
    distinctJpegs: new Set(answers.filter((a) => a.status === 200).map((a) => a.bytes)).size,
    refusedCpuMs: (cpuAtRefused - cpu0) * 1000,
    spawnedBeforeLast503: [...firstSeen.values()].filter((t) => t <= lastRefused).length,
    fromUs,
    refusedUs: fromUs + (lastRefused - t0) * 1000,
  };
}

function latency(xs: number[]): Latency {
  return { p50: percentile(xs, 50), p95: percentile(xs, 95), max: xs.length ? Math.max(...xs) : NaN, n: xs.length };
}

export interface SnapshotsResult {
  runs: number;
  baselineMs: number;
  baseline: Latency[];
  varied: Burst[];
  identical: Burst[];
  refusedMetric?: number;
  profile?: {
    bursts: number;
    requests: number;
    refused: number;
    /** ffmpeg decoders spawned inside the windows. */
    spawned: number;
    /** camrelay's main-thread CPU in the windows, from /proc. */
    cpuMs: number;
    cost: WindowCost;
    file: string;
  };
}

export const SNAPSHOTS_KEY = 'snapshots';

export async function runSnapshots(ctx: BenchContext): Promise<string> {
  const runs = ctx.quick ? 2 : 5;
  const baselineMs = ctx.quick ? 2000 : 5000;
  const result: SnapshotsResult = { runs, baselineMs, baseline: [], varied: [], identical: [] };
  const relay = await Camrelay.start({ streams: { cam: ctx.camera.url() } });
  let sampler: Sampler | undefined;
  try {
    const first = await get(`${relay.base}/api/frame.jpeg?src=cam`);
    if (first.status !== 200) throw new Error(`a single snapshot answered HTTP ${first.status}: ${relay.problemsSince(0)}`);
    sampler = await Sampler.start(relay.base);
    for (let r = 0; r < runs; r++) {
      await idle(ctx, relay);
      const from = Date.now();
      await sleep(baselineMs);
      result.baseline.push(latency(sampler.between(from, Date.now()).map((s) => s.ms)));
      // Sizes never asked before in this camrelay, so that no answer comes from the JPEG cache
      // (api.snapshot_cache) of an earlier burst.
      const v = await burst(ctx, relay, sampler, (i) => `&width=${400 + 2 * (i + BURST * r)}`);
      result.varied.push(v);
      ctx.log(`snapshots ${r + 1}/${runs}: varied ${statusText(v)}, ${v.maxChildren} ffmpeg, ${fmt(v.totalMs, 0)} ms, GET /api p50 ${fmt(percentile(v.api, 50))} max ${fmt(Math.max(...v.api))} ms (${v.api.length})`);
      const s = await burst(ctx, relay, sampler, () => `&width=${320 - 2 * r}`);
      result.identical.push(s);
      ctx.log(`snapshots ${r + 1}/${runs}: identical ${statusText(s)}, ${s.maxChildren} ffmpeg, ${fmt(s.totalMs, 0)} ms, GET /api p50 ${fmt(percentile(s.api, 50))} max ${fmt(Math.max(...s.api))} ms (${s.api.length})`);
    }
    result.refusedMetric = metricValue(await relay.metrics(), 'camrelay_api_refused_total{reason="snapshot_decoders"}');
  } finally {
    await sampler?.stop();
    await relay.stop();
  }
  result.profile = await profiled(ctx, ctx.quick ? 2 : 5);
  ctx.shared.set(SNAPSHOTS_KEY, result);
  return report(ctx, result);
}

/** Varied bursts on camrelay under --cpu-prof, no sampler; the window is each burst's refusal phase. */
async function profiled(ctx: BenchContext, bursts: number): Promise<SnapshotsResult['profile']> {
  const dir = path.join(CACHE, 'profiles', 'snapshots');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const windows: [number, number][] = [];
  let requests = 0;
  let refused = 0;
  let spawned = 0;
  let cpuMs = 0;
  const relay = await Camrelay.start({ streams: { cam: ctx.camera.url() }, cpuProfDir: dir });
  try {
    // Warm: the first requests of a process run cold code (module init, JIT).
    await idle(ctx, relay);
    await burst(ctx, relay, undefined, (i) => `&width=${200 + 2 * i}`);
    for (let b = 0; b < bursts; b++) {
      const r = await burst(ctx, relay, undefined, (i) => `&width=${1000 + 2 * (i + BURST * b)}`);
      if (!Number.isFinite(r.refusedByMs)) continue;
      windows.push([r.fromUs, r.refusedUs]);
      requests += BURST;
      refused += r.statuses.get(503) ?? 0;
      spawned += r.spawnedBeforeLast503;
      cpuMs += r.refusedCpuMs;
    }
  } finally {
    await relay.stop();
  }
  const file = newestProfile(dir);
  if (!file || windows.length === 0) {
    ctx.log(`  snapshots: no profile (${file ? 'no burst had a 503' : `none written in ${dir}`})`);
    return undefined;
  }
  const costs = windows.map(([a, b]) => windowCost(file, a, b, 60));
  return { bursts: windows.length, requests, refused, spawned, cpuMs, cost: mergeCosts(costs), file: path.relative(path.resolve(CACHE, '..', '..'), file) };
}

function mergeCosts(cs: WindowCost[]): WindowCost {
  const add = (rows: { k: string; ms: number }[][]) => {
    const m = new Map<string, number>();
    for (const r of rows) for (const { k, ms } of r) m.set(k, (m.get(k) ?? 0) + ms);
    return [...m.entries()].sort((a, b) => b[1] - a[1]);
  };
  return {
    windowMs: cs.reduce((a, c) => a + c.windowMs, 0),
    busyMs: cs.reduce((a, c) => a + c.busyMs, 0),
    gcMs: cs.reduce((a, c) => a + c.gcMs, 0),
    samples: cs.reduce((a, c) => a + c.samples, 0),
    self: add(cs.map((c) => c.self.map((x) => ({ k: x.place, ms: x.ms })))).map(([place, ms]) => ({ place, ms })),
    inclusive: add(cs.map((c) => c.inclusive.map((x) => ({ k: x.key, ms: x.ms })))).map(([key, ms]) => ({ key, ms })),
    owner: add(cs.map((c) => c.owner.map((x) => ({ k: x.key, ms: x.ms })))).map(([key, ms]) => ({ key, ms })),
    spawnMs: cs.reduce((a, c) => a + c.spawnMs, 0),
  };
}

function statusText(b: Burst): string {
  return [...b.statuses.entries()]
    .sort((a, c) => a[0] - c[0])
    .map(([s, n]) => `${n}×${s === 0 ? 'no answer' : s}`)
    .join(' ');
}

function report(ctx: BenchContext, r: SnapshotsResult): string {
  const med = (xs: number[]) => fmt(median(xs.filter(Number.isFinite)));
  const medInt = (xs: number[]) => fmt(median(xs), 0);
  const count = (bs: Burst[], s: number) => medInt(bs.map((b) => b.statuses.get(s) ?? 0));
  const other = (bs: Burst[]) => medInt(bs.map((b) => BURST - (b.statuses.get(200) ?? 0) - (b.statuses.get(503) ?? 0)));
  const lat = (bs: Burst[]) => bs.map((b) => latency(b.api));
  const row = (label: string, l: Latency[], bs?: Burst[]) => [
    label,
    medInt(l.map((x) => x.n)),
    med(l.map((x) => x.p50)),
    med(l.map((x) => x.p95)),
    med(l.map((x) => x.max)),
    fmt(Math.max(...l.map((x) => x.max).filter(Number.isFinite))),
    bs ? medInt(bs.map((b) => b.maxChildren)) : '–',
    bs ? String(Math.max(...bs.map((b) => b.maxChildren))) : '–',
    bs ? count(bs, 200) : '–',
    bs ? count(bs, 503) : '–',
    bs ? other(bs) : '–',
    bs ? medInt(bs.map((b) => b.refusedByMs)) : '–',
    bs ? medInt(bs.map((b) => b.totalMs)) : '–',
  ];
  const failedApi = [...r.varied, ...r.identical].reduce((a, b) => a + b.apiFailed, 0);
  const out = [
    '## Snapshot bursts: 150 frame.jpeg at once, GET /api meanwhile',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)} (gst-rtsp-server), pulled by camrelay over RTSP, so every ffmpeg child of camrelay is a snapshot decoder. ` +
      `camrelay is the bundle (\`node dist/main.js\`) with the shipped defaults: api.max_snapshots ${CAP}, api.max_connections 256, api.snapshot_cache 1 s. ${r.runs} runs; each figure is the median of the runs' figures, "max of runs" the largest of all.`,
    `Each burst starts from an idle stream (no camera connection, no ffmpeg) and sends ${BURST} \`GET /api/frame.jpeg?src=cam&width=…\` at once, each on its own connection. ` +
      `Varied: ${BURST} widths never asked before (no answer from the JPEG cache): each needs a decoder. Identical: one width for all ${BURST}: they share one decode. ` +
      `GET /api is timed by a separate Node process (\`bench/api-sampler.ts\`): a fresh connection per GET, from sending to the end of the answer, one GET every ${SAMPLER_PAUSE_MS} ms after the previous one ended; the samples sent between the burst's first request and its last answer are the burst's. ` +
      `Idle: the same sampler for ${r.baselineMs / 1000} s before each run, no snapshot running. ffmpeg children of camrelay are counted from /proc every 5 ms. "503 done" is when the last 503 had arrived, from the first request sent.`,
    '',
    table(
      ['', 'GET /api samples', 'p50 ms', 'p95 ms', 'max ms', 'max of runs ms', 'ffmpeg max', 'ffmpeg max of runs', '200', '503', 'other', '503 done ms', 'burst ms'],
      [row('idle (no burst)', r.baseline), row(`${BURST} varied`, lat(r.varied), r.varied), row(`${BURST} identical`, lat(r.identical), r.identical)],
    ),
    '',
  ];
  const shared = r.identical.map((b) => b.distinctJpegs);
  out.push(
    `Identical bursts: ${shared.every((n) => n === 1) ? 'every 200 carried the same JPEG (one size in bytes) in every run' : `distinct JPEG sizes per run: ${shared.join(', ')}`}. ` +
      `camrelay_api_refused_total{reason="snapshot_decoders"} at the end: ${r.refusedMetric ?? '–'} (503s counted by the bench: ${r.varied.reduce((a, b) => a + (b.statuses.get(503) ?? 0), 0) + r.identical.reduce((a, b) => a + (b.statuses.get(503) ?? 0), 0)}).` +
      (failedApi ? ` ${failedApi} GET /api sample(s) during bursts got no 200.` : ''),
    '',
  );
  const v = r.varied;
  out.push(
    `Varied bursts, until the last 503 (the bundle, the runs above): camrelay's main thread used ${medInt(v.map((b) => b.refusedCpuMs))} ms of CPU (median; /proc, 10 ms ticks; runs: ${v.map((b) => fmt(b.refusedCpuMs, 0)).join(', ')}), ` +
      `${fmt(median(v.map((b) => (1000 * b.refusedCpuMs) / BURST)), 0)} µs per request, with ${medInt(v.map((b) => b.spawnedBeforeLast503))} decoder spawn(s) in that time (runs: ${v.map((b) => b.spawnedBeforeLast503).join(', ')}).`,
    '',
  );
  const p = r.profile;
  if (p) {
    const c = p.cost;
    const per = (ms: number) => fmt((1000 * ms) / p.requests, 0);
    const pct = (ms: number) => fmt((100 * ms) / Math.max(1e-9, c.busyMs), 0);
    // The sampled time counts a thread waiting for a core as busy; /proc counts only CPU. The split
    // by function is the profile's, scaled to the CPU /proc measured.
    const scale = c.busyMs > 0 ? p.cpuMs / c.busyMs : NaN;
    const rest = c.busyMs - c.spawnMs;
    const rows = (xs: { key: string; ms: number }[], n: number) => xs.slice(0, n).map((x) => [x.key, fmt(x.ms), per(x.ms), pct(x.ms)]);
    out.push(
      `### Main-thread cost of a refused snapshot`,
      '',
      `camrelay from src/ through tsx under \`node --cpu-prof\` (1 ms sampling), no GET /api sampler; one warm-up burst, then ${p.bursts} varied bursts. Window of each: from its first request sent to its last 503 answered: ${p.requests} requests, ${p.refused} refused; ${p.spawned} ffmpeg decoder(s) were spawned inside the windows. ` +
        `In the windows (${fmt(c.windowMs, 0)} ms in all, ${c.samples} samples) the profile has the main thread busy ${fmt(c.busyMs, 0)} ms (${fmt((100 * c.busyMs) / Math.max(1e-9, c.windowMs), 0)}%; garbage collection ${fmt(c.gcMs, 0)} ms); /proc says it used ${fmt(p.cpuMs, 0)} ms of CPU (the rest is waiting for a core). ` +
        `Spawning ffmpeg (child_process on the stack) took ${fmt(c.spawnMs, 0)} ms of it: **${p.spawned ? fmt(c.spawnMs / p.spawned) : '–'} ms per decoder, in one synchronous call**. ` +
        `Everything else, ${fmt(rest, 0)} ms, is the requests' handling: **${per(rest)} µs per request sampled, ${Number.isFinite(scale) ? fmt((1000 * rest * scale) / p.requests, 0) : '–'} µs of CPU** (scaled to /proc). Profile: \`${p.file}\`.`,
      '',
      'By owner: each sample given to the nearest camrelay function or package on its stack (Node\'s own code counts for whoever called it; samples with neither, such as accepting connections and parsing requests, by the Node module sampled):',
      '',
      table(['owner', 'ms', 'µs per request', '% of busy'], rows(c.owner, 20)),
      '',
      'On the stack (inclusive: a sample counts once for every camrelay function, package and Node module it was under; a middleware that calls next() holds everything after it):',
      '',
      table(['function / package / module', 'ms', 'µs per request', '% of busy'], rows(c.inclusive.filter((x) => !x.key.startsWith('node:internal/process/') && !x.key.startsWith('node:internal/timers')), 24)),
    );
  }
  return out.join('\n');
}
