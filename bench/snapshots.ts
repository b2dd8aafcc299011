// Snapshot bursts (issue 12): 150 GET /api/frame.jpeg at once on one stream, each on its own
// connection, with api.max_snapshots at its default (4). Varied sizes need a decoder each: at
// most 4 ffmpeg run, the rest are answered 503. Identical ones share one decode and all get the
// JPEG. Meanwhile GET /api is timed from another process (bench/api-sampler.ts), as Home
// Assistant's watchdog would see it, and camrelay's ffmpeg children are counted from /proc.
// Then a profiled camrelay (node --cpu-prof) takes the same varied bursts with no sampler, to
// say what one refused snapshot costs its main thread and where.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { waitFor } from '../test/helpers/wait.js';
import { childrenNamed } from '../test/helpers/proc-children.js';
import type { ApiSample } from './api-sampler.js';
import { Camrelay, metricValue } from './camrelay.js';
import { CACHE, describeClip } from './clip.js';
import { fmt, median, sleep, type BenchContext } from './context.js';
import { monotonicMicros, newestProfile } from './cpu-profile.js';
import { windowCost, type WindowCost } from './profile-window.js';
import { cpuSeconds } from './proc.js';
import { machineLine, percentile, table } from './report.js';

const BURST = 150;
/** camrelay's default api.max_snapshots, which the bench config leaves as it is. */
const CAP = 4;
const SAMPLER_PAUSE_MS = 20;
/** GET loops in the sampler process, so that a short burst still gets samples. */
const SAMPLER_LOOPS = 4;

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
  /** The slowest GET /api sample: when it was sent (ms after the burst's first request) and its latency. */
  slowest?: { sentMs: number; ms: number };
  /** Distinct JPEGs among the 200s (by size in bytes; identical requests must share one). */
  distinctJpegs: number;
  /** camrelay's main-thread CPU (schedstat) from the first request sent to the last 503 received. */
  refusedCpuMs: number;
  /** Over the whole burst: camrelay's main thread on a CPU, and runnable but waiting for one. */
  cpuMs: number;
  waitMs: number;
  /** ffmpeg processes first seen before the last 503 arrived (their spawns are in that CPU). */
  spawnedBeforeLast503: number;  /** CPU the ffmpeg children used (last /proc read of each), and the machine's busy share of its cores, over the burst. */
  ffmpegCpuMs: number;
  /** CPU the camera process (gst-rtsp-server) and this bench process (the 150 clients) used over the burst. */
  cameraCpuMs: number;
  clientCpuMs: number;
  machineBusyPercent: number;
}

interface Latency {
  p50: number;
  p95: number;
  max: number;
  n: number;
}

/** camrelay's children named ffmpeg (snapshot decoders: the camera is pulled natively). */
function ffmpegChildren(pid: number): number[] {
  return childrenNamed(pid, ['ffmpeg']);
}

/** All cores' busy and total jiffies from /proc/stat (busy: not idle, not iowait). */
function machineJiffies(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

/**
 * A thread's time on a CPU and time runnable but waiting for one (ns in /proc/<pid>/task/<tid>/schedstat;
 * the main thread's tid is the pid). The wait says how much of a slow answer was the machine's load.
 */
function mainThreadSched(pid: number): { cpuMs: number; waitMs: number } {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return { cpuMs: run! / 1e6, waitMs: wait! / 1e6 };
  } catch {
    return { cpuMs: NaN, waitMs: NaN };
  }
}

/** bench/api-sampler.ts as a child process, and the samples it sent (the house benchmark uses it too). */
export class Sampler {
  readonly samples: ApiSample[] = [];
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: ApiSample | { ready: true }) => {
      if ('ms' in m) this.samples.push(m);
    });
  }

  static async start(base: string, pauseMs = SAMPLER_PAUSE_MS, loops = SAMPLER_LOOPS): Promise<Sampler> {
    const child = fork(path.join(import.meta.dirname, 'api-sampler.ts'), [base, String(pauseMs), String(loops)], {
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

/**
 * `n` connections to camrelay, each connected before the burst, so that the burst is the requests
 * alone: written in one turn, they reach camrelay within a millisecond or two, and this process
 * spends little CPU on them while camrelay answers (http.get would connect and parse each).
 */
async function openClients(port: number, n: number): Promise<net.Socket[]> {
  const socks = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  for (const s of socks) s.setNoDelay(true);
  return socks;
}

/** One GET on a connection of openClients(); resolves with the status and body size once camrelay closes it. */
function send(sock: net.Socket, port: number, pathAndQuery: string): Promise<Answer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    const done = () => {
      const all = Buffer.concat(chunks);
      const head = all.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(all.subarray(0, 16).toString('latin1'))?.[1] ?? 0);
      resolve({ status, bytes: head < 0 ? 0 : all.length - head - 4, at: performance.now() });
    };
    sock.once('close', done);
    sock.once('error', () => undefined);
    sock.setTimeout(30000, () => sock.destroy());
    sock.write(`GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
  });
}

/** The stream idle again (camera connection gone) and no ffmpeg left: every burst starts from the same state. */
async function idle(ctx: BenchContext, relay: Camrelay): Promise<void> {
  await waitFor('the stream to be idle and every snapshot ffmpeg gone', () => ctx.camera.openConnections() === 0 && ffmpegChildren(relay.pid).length === 0, 20000);
}

type BurstRun = Burst & { fromUs: number; refusedUs: number };

function slowestSample(samples: ApiSample[], t0Epoch: number): Burst['slowest'] {
  const ok = samples.filter((s) => s.status === 200);
  if (ok.length === 0) return undefined;
  const worst = ok.reduce((a, b) => (b.ms > a.ms ? b : a));
  return { sentMs: worst.t - t0Epoch, ms: worst.ms };
}

/**
 * 150 requests at once, `query(i)` each; children polled every 5 ms until the last answer.
 * camrelay itself starts its decoders at nice 19 under SCHED_IDLE (src/outputs/snapshot.ts, src/process/idle-priority.ts).
 */
async function burst(ctx: BenchContext, relay: Camrelay, sampler: Sampler | undefined, query: (i: number) => string, fromIdle = true): Promise<BurstRun> {
  if (fromIdle) await idle(ctx, relay);
  let maxChildren = 0;
  const firstSeen = new Map<number, number>();
  const kidCpu = new Map<number, number>();
  const machine0 = machineJiffies();
  const camera0 = ctx.camera.pid === undefined ? NaN : (cpuSeconds(ctx.camera.pid) ?? NaN);
  const client0 = process.cpuUsage();
  const poll = setInterval(() => {
    const kids = ffmpegChildren(relay.pid);
    maxChildren = Math.max(maxChildren, kids.length);
    for (const k of kids) {
      const c = cpuSeconds(k);
      if (c !== undefined) kidCpu.set(k, c);
      if (firstSeen.has(k)) continue;
      firstSeen.set(k, performance.now());
    }
  }, 5);
  const socks = await openClients(relay.port, BURST);
  const sched0 = mainThreadSched(relay.pid);
  let cpuAtRefused = NaN;
  const fromUs = monotonicMicros();
  const t0 = performance.now();
  const answers = await Promise.all(
    socks.map((sock, i) =>
      send(sock, relay.port, `/api/frame.jpeg?src=cam${query(i)}`).then((a) => {
        if (a.status === 503) cpuAtRefused = mainThreadSched(relay.pid).cpuMs;
        return a;
      }),
    ),
  );
  clearInterval(poll);
  const sched1 = mainThreadSched(relay.pid);
  const machine1 = machineJiffies();
  const camera1 = ctx.camera.pid === undefined ? NaN : (cpuSeconds(ctx.camera.pid) ?? NaN);
  const client = process.cpuUsage(client0);
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
    slowest: slowestSample(samples, performance.timeOrigin + t0),
    apiFailed: samples.filter((s) => s.status !== 200).length,
    distinctJpegs: new Set(answers.filter((a) => a.status === 200).map((a) => a.bytes)).size,
    refusedCpuMs: cpuAtRefused - sched0.cpuMs,
    cpuMs: sched1.cpuMs - sched0.cpuMs,
    waitMs: sched1.waitMs - sched0.waitMs,
    ffmpegCpuMs: 1000 * [...kidCpu.values()].reduce((a, b) => a + b, 0),
    cameraCpuMs: 1000 * (camera1 - camera0),
    clientCpuMs: (client.user + client.system) / 1000,
    machineBusyPercent: (100 * (machine1.busy - machine0.busy)) / Math.max(1, machine1.total - machine0.total),
    spawnedBeforeLast503: [...firstSeen.values()].filter((t) => t <= lastRefused).length,
    fromUs,
    refusedUs: fromUs + (lastRefused - t0) * 1000,
  };
}

/**
 * An RTSP "camera" that accepts and never answers: snapshots of a stream on it wait for a
 * keyframe that never comes, so they hold decoder slots without spawning anything.
 */
class SilentCamera {
  readonly #sockets = new Set<net.Socket>();
  private constructor(readonly server: net.Server) {
    server.on('connection', (s) => {
      this.#sockets.add(s);
      // Read (and drop) what camrelay sends, or its FIN would never be seen and 'close' never come.
      s.resume();
      s.on('error', () => undefined);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  static async start(): Promise<SilentCamera> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new SilentCamera(server);
  }

  get url(): string {
    return `rtsp://127.0.0.1:${(this.server.address() as net.AddressInfo).port}/held`;
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /** Ends camrelay's connections (it retries them while snapshots wait, until api's start timeout). */
  release(): void {
    for (const s of this.#sockets) s.destroy();
  }

  close(): Promise<void> {
    this.release();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Snapshots of the silent stream holding decoder slots; they end at camrelay's start timeout (10 s). */
interface Holds {
  silent: SilentCamera;
  answers: Promise<Answer>[];
  next: number;
  /** Probes answered 503 (they count in camrelay's refusal metric too). */
  refusedProbes: number;
}

/**
 * Every decoder slot held by snapshots of the silent stream, then 150 varied requests on `cam`:
 * all refused, and no ffmpeg is spawned meanwhile, so the burst is the cost of refusing alone.
 * Holds are kept for the next held burst (they end by themselves only after 10 s); a probe of
 * one more size tells whether all slots are still taken, and takes one if not.
 */
async function heldBurst(ctx: BenchContext, relay: Camrelay, sampler: Sampler | undefined, holds: Holds, run: number): Promise<BurstRun> {
  await idle(ctx, relay);
  for (let i = 0; ; i++) {
    if (i >= 3 * CAP) throw new Error(`the decoder slots were not all taken after ${i} snapshots of the silent stream`);
    const probe = get(`${relay.base}/api/frame.jpeg?src=held&width=${16 + 2 * holds.next++}`);
    const first = await Promise.race([probe, sleep(1000).then(() => undefined)]);
    if (first?.status === 503) {
      holds.refusedProbes++;
      break;
    }
    if (!first) holds.answers.push(probe);
    if (i === 0) await waitFor('camrelay to connect to the silent camera', () => holds.silent.connections > 0, 10000);
  }
  return burst(ctx, relay, sampler, (i) => `&width=${2000 + 2 * (i + BURST * run)}`, false);
}

async function releaseHolds(holds: Holds): Promise<void> {
  holds.silent.release();
  await Promise.all(holds.answers.splice(0));
}

let block = 0;

/**
 * Widths for a varied burst: 150 sizes not asked in the 3 bursts before (api.snapshot_cache
 * answers a size again for 1 s), all near 320 for the first requests, the ones that get the
 * decoders, so that every burst decodes to about the same size.
 */
function variedQuery(): (i: number) => string {
  const j = block++ % 4;
  return (i) => `&width=${320 + 2 * (4 * i + j)}`;
}

function latency(xs: number[]): Latency {
  return { p50: percentile(xs, 50), p95: percentile(xs, 95), max: xs.length ? Math.max(...xs) : NaN, n: xs.length };
}

export interface SnapshotsResult {
  runs: number;
  baselineMs: number;
  baseline: Latency[];
  /** All cores' busy % during each idle window: the load other than the bursts. */
  baselineBusy: number[];
  varied: Burst[];
  identical: Burst[];
  /** 150 varied with every decoder slot held by the silent stream: refusals only. */
  held: Burst[];
  refusedMetric?: number;
  /** 503s the bench received from that camrelay (bursts and probes). */
  refusedByBench?: number;
  profile?: {
    bursts: number;
    requests: number;
    refused: number;
    /** ffmpeg decoders spawned in the varied bursts' windows, and the sampled time spawning took there. */
    spawned: number;
    spawnMs: number;
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
  const result: SnapshotsResult = { runs, baselineMs, baseline: [], baselineBusy: [], varied: [], identical: [], held: [] };
  const silent = await SilentCamera.start();
  const relay = await Camrelay.start({ streams: { cam: ctx.camera.url(), held: silent.url } });
  let sampler: Sampler | undefined;
  try {
    const first = await get(`${relay.base}/api/frame.jpeg?src=cam`);
    if (first.status !== 200) throw new Error(`a single snapshot answered HTTP ${first.status}: ${relay.problemsSince(0)}`);
    sampler = await Sampler.start(relay.base);
    for (let r = 0; r < runs; r++) {
      await idle(ctx, relay);
      const from = Date.now();
      const j0 = machineJiffies();
      await sleep(baselineMs);
      const j1 = machineJiffies();
      result.baseline.push(latency(sampler.between(from, Date.now()).map((s) => s.ms)));
      result.baselineBusy.push((100 * (j1.busy - j0.busy)) / Math.max(1, j1.total - j0.total));
      const v = await burst(ctx, relay, sampler, variedQuery());
      result.varied.push(v);
      ctx.log(`snapshots ${r + 1}/${runs}: varied ${statusText(v)}, ${v.maxChildren} ffmpeg, ${fmt(v.totalMs, 0)} ms, GET /api p50 ${fmt(percentile(v.api, 50))} max ${fmt(Math.max(...v.api))} ms (${v.api.length})`);
      // Below every varied width, and a new one per run: no answer from the cache of an earlier burst.
      const s = await burst(ctx, relay, sampler, () => `&width=${300 - 2 * r}`);
      result.identical.push(s);
      ctx.log(`snapshots ${r + 1}/${runs}: identical ${statusText(s)}, ${s.maxChildren} ffmpeg, ${fmt(s.totalMs, 0)} ms, GET /api p50 ${fmt(percentile(s.api, 50))} max ${fmt(Math.max(...s.api))} ms (${s.api.length})`);
    }
    const holds: Holds = { silent, answers: [], next: 0, refusedProbes: 0 };
    try {
      for (let r = 0; r < runs; r++) {
        const h = await heldBurst(ctx, relay, sampler, holds, r);
        result.held.push(h);
        ctx.log(`snapshots ${r + 1}/${runs}: held ${statusText(h)}, ${h.maxChildren} ffmpeg, ${fmt(h.totalMs, 0)} ms, main thread ${fmt(h.refusedCpuMs, 0)} ms CPU, GET /api p50 ${fmt(percentile(h.api, 50))} max ${fmt(Math.max(...h.api))} ms (${h.api.length})`);
      }
    } finally {
      await releaseHolds(holds);
    }
    result.refusedByBench = [...result.varied, ...result.identical, ...result.held].reduce((a, b) => a + (b.statuses.get(503) ?? 0), 0) + holds.refusedProbes;
    result.refusedMetric = metricValue(await relay.metrics(), 'camrelay_api_refused_total{reason="snapshot_decoders"}');
  } finally {
    await sampler?.stop();
    await relay.stop();
  }
  try {
    result.profile = await profiled(ctx, silent, ctx.quick ? 2 : 5);
  } finally {
    await silent.close();
  }
  ctx.shared.set(SNAPSHOTS_KEY, result);
  return report(ctx, result);
}

/**
 * camrelay under --cpu-prof, no sampler. Held bursts (refusals only): their windows, first
 * request to last 503, are the cost tables. Varied bursts: the ffmpeg spawns in theirs.
 */
async function profiled(ctx: BenchContext, silent: SilentCamera, bursts: number): Promise<SnapshotsResult['profile']> {
  const dir = path.join(CACHE, 'profiles', 'snapshots');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const windows: [number, number][] = [];
  let requests = 0;
  let refused = 0;
  let spawned = 0;
  let cpuMs = 0;
  const variedWindows: [number, number][] = [];
  const relay = await Camrelay.start({ streams: { cam: ctx.camera.url(), held: silent.url }, cpuProfDir: dir });
  try {
    // Warm: the first requests of a process run cold code (module init, JIT).
    await burst(ctx, relay, undefined, variedQuery());
    for (let b = 0; b < bursts; b++) {
      const v = await burst(ctx, relay, undefined, variedQuery());
      if (Number.isFinite(v.refusedByMs)) {
        variedWindows.push([v.fromUs, v.refusedUs]);
        spawned += v.spawnedBeforeLast503;
      }
    }
    const holds: Holds = { silent, answers: [], next: 0, refusedProbes: 0 };
    try {
      await heldBurst(ctx, relay, undefined, holds, 7);
      for (let b = 0; b < bursts; b++) {
        const h = await heldBurst(ctx, relay, undefined, holds, b);
        if (!Number.isFinite(h.refusedByMs)) continue;
        windows.push([h.fromUs, h.refusedUs]);
        requests += BURST;
        refused += h.statuses.get(503) ?? 0;
        cpuMs += h.refusedCpuMs;
      }
    } finally {
      await releaseHolds(holds);
    }
  } finally {
    await relay.stop();
  }
  const file = newestProfile(dir);
  if (!file || windows.length === 0) {
    ctx.log(`  snapshots: no profile (${file ? 'no burst had a 503' : `none written in ${dir}`})`);
    return undefined;
  }
  const cost = mergeCosts(windows.map(([a, b]) => windowCost(file, a, b, 60, 'sendError')));
  const varied = mergeCosts(variedWindows.map(([a, b]) => windowCost(file, a, b, 60)));
  return {
    bursts: windows.length,
    requests,
    refused,
    spawned,
    spawnMs: varied.spawnMs,
    cpuMs,
    cost,
    file: path.relative(path.resolve(import.meta.dirname, '..'), file),
  };
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
    focus: cs[0]?.focus && {
      fn: cs[0].focus.fn,
      ms: cs.reduce((a, c) => a + (c.focus?.ms ?? 0), 0),
      leaves: add(cs.map((c) => (c.focus?.leaves ?? []).map((x) => ({ k: x.key, ms: x.ms })))).map(([key, ms]) => ({ key, ms })),
    },
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
  const slowest = (bs: Burst[]) => bs.map((b) => (b.slowest ? `${fmt(b.slowest.ms, 0)} ms sent at +${fmt(b.slowest.sentMs, 0)} ms` : '–')).join('; ');
  const out = [
    '## Snapshot bursts: 150 frame.jpeg at once, GET /api meanwhile',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)} (gst-rtsp-server), pulled by camrelay over RTSP, so every ffmpeg child of camrelay is a snapshot decoder. ` +
      `camrelay is the bundle (\`node dist/main.js\`) with the shipped defaults: api.max_snapshots ${CAP}, api.max_connections 256, api.snapshot_cache 1 s. ${r.runs} runs; each figure is the median of the runs' figures, "max of runs" the largest of all.`,
    `Each burst starts from an idle stream (no camera connection, no ffmpeg) and sends ${BURST} \`GET /api/frame.jpeg?src=cam&width=…\` at once, each on its own connection, opened before the burst (the requests are written in one event-loop turn of the bench, so they reach camrelay within a millisecond or two; the time and CPU of 150 TCP handshakes are not in the burst). ` +
      `Varied: ${BURST} widths not asked in the burst before (no answer from the JPEG cache), those of the first requests near 320: each needs a decoder. Identical: one width for all ${BURST}: they share one decode. ` +
      `GET /api is timed by a separate Node process (\`bench/api-sampler.ts\`): a fresh connection per GET, from sending to the end of the answer, ${SAMPLER_LOOPS} loops, each sending a GET ${SAMPLER_PAUSE_MS} ms after its previous one ended; the samples sent between the burst's first request and its last answer are the burst's. ` +
      `camrelay starts its snapshot decoders at nice 19 under SCHED_IDLE (through chrt) with one decoding thread each (src/outputs/snapshot.ts). ` +
      `Decoders held: ${CAP} snapshots of a second stream whose RTSP camera accepts the connection and never answers hold every decoder slot (a probe of one more size is refused first), so all ${BURST} are refused and no ffmpeg is spawned during the burst: the cost of refusing alone. ` +
      `Idle: the same sampler for ${r.baselineMs / 1000} s before each run, no snapshot running. ffmpeg children of camrelay are counted from /proc every 5 ms. "503 done" is when the last 503 had arrived, from the first request sent.`,
    '',
    table(
      ['', 'GET /api samples', 'p50 ms', 'p95 ms', 'max ms', 'max of runs ms', 'ffmpeg max', 'ffmpeg max of runs', '200', '503', 'other', '503 done ms', 'burst ms'],
      [
        row('idle (no burst)', r.baseline),
        row(`${BURST} varied`, lat(r.varied), r.varied),
        row(`${BURST} identical`, lat(r.identical), r.identical),
        row(`${BURST} varied, ${CAP} decoders held`, lat(r.held), r.held),
      ],
    ),
    '',
  ];
  const shared = r.identical.map((b) => b.distinctJpegs);
  out.push(
    `Identical bursts: ${shared.every((n) => n === 1) ? 'every 200 carried the same JPEG (one size in bytes) in every run' : `distinct JPEG sizes per run: ${shared.join(', ')}`}. ` +
      `camrelay_api_refused_total{reason="snapshot_decoders"} at the end: ${r.refusedMetric ?? '–'} (503s the bench received, bursts and probes: ${r.refusedByBench ?? '–'}).` +
      (failedApi ? ` ${failedApi} GET /api sample(s) during bursts got no 200.` : ''),
    '',
    `Slowest GET /api of each run, and when it was sent after the burst's first request: varied ${slowest(r.varied)}; identical ${slowest(r.identical)}; held ${slowest(r.held)}.`,
    '',
  );
  const cpuRow = (label: string, bs: Burst[]) => [
    label,
    bs.some((b) => Number.isFinite(b.refusedCpuMs)) ? med(bs.map((b) => b.refusedCpuMs)) : '–',
    bs.some((b) => Number.isFinite(b.refusedCpuMs)) ? fmt(median(bs.map((b) => (1000 * b.refusedCpuMs) / BURST).filter(Number.isFinite)), 0) : '–',
    bs.some((b) => Number.isFinite(b.refusedCpuMs)) ? medInt(bs.map((b) => b.spawnedBeforeLast503)) : '–',
    med(bs.map((b) => b.cpuMs)),
    med(bs.map((b) => b.waitMs)),
    medInt(bs.map((b) => b.ffmpegCpuMs)),
    medInt(bs.map((b) => b.cameraCpuMs)),
    medInt(bs.map((b) => b.clientCpuMs)),
    medInt(bs.map((b) => b.machineBusyPercent)),
    medInt(bs.map((b) => b.totalMs)),
  ];
  out.push(
    `During the idle windows (camrelay idle but for the sampler's GETs) all cores were ${fmt(median(r.baselineBusy), 0)}% busy (median; runs: ${r.baselineBusy.map((x) => fmt(x, 0)).join(', ')}): the machine's load apart from the bursts.`,
    '',
    `camrelay's main thread in the same bursts, from /proc/<pid>/task/<pid>/schedstat (medians): time on a CPU until the last 503, per request of the burst, ffmpeg spawns until then; and over the whole burst, time on a CPU and time runnable but waiting for a core (the machine's load, ffmpeg decoders included); the CPU camrelay's ffmpeg children used (/proc, 10 ms ticks, last read of each while polled; a decoder's last few ms can be missed), the CPU of the camera process (gst-rtsp-server, which starts a media pipeline when camrelay connects) and of the bench process that sends the 150 requests and reads their answers, and how busy all cores were (/proc/stat).`,
    '',
    table(
      ['', 'CPU to last 503 ms', 'µs per request', 'spawns to last 503', 'CPU whole burst ms', 'waiting for a core ms', 'ffmpeg CPU ms', 'camera CPU ms', 'bench clients CPU ms', `machine busy % (${os.cpus().length} cores)`, 'burst ms'],
      [cpuRow(`${BURST} varied`, r.varied), cpuRow(`${BURST} identical`, r.identical), cpuRow(`${BURST} varied, ${CAP} decoders held`, r.held)],
    ),
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
      `camrelay from src/ through tsx under \`node --cpu-prof\` (1 ms sampling), no GET /api sampler; a warm-up varied burst, ${p.bursts} varied bursts, a warm-up held burst, ${p.bursts} held bursts. The tables are the held bursts' windows, each from its first request sent to its last 503 answered: ${p.requests} requests, ${p.refused} refused. ` +
        `In the windows (${fmt(c.windowMs, 0)} ms in all, ${c.samples} samples) the profile has the main thread busy ${fmt(c.busyMs, 0)} ms (${fmt((100 * c.busyMs) / Math.max(1e-9, c.windowMs), 0)}%; garbage collection ${fmt(c.gcMs, 0)} ms); /proc says it used ${fmt(p.cpuMs, 0)} ms of CPU (the rest is waiting for a core). ` +
        `Spawning (child_process on the stack) took ${fmt(c.spawnMs, 0)} ms of it; the rest, ${fmt(rest, 0)} ms, is the requests' handling: **${per(rest)} µs per refused request sampled, ${Number.isFinite(scale) ? fmt((1000 * rest * scale) / p.requests, 0) : '–'} µs of CPU** (scaled to /proc). ` +
        `In the varied bursts' windows (first request to last 503) ${p.spawned} ffmpeg decoder(s) were spawned, with child_process on the stack for ${fmt(p.spawnMs, 0)} ms: **${p.spawned ? fmt(p.spawnMs / p.spawned) : '–'} ms of main thread per decoder, in one synchronous spawn() call** (sampled time). Profile: \`${p.file}\`.`,
      '',
      'By owner: each sample given to the nearest camrelay function or package on its stack (Node\'s own code counts for whoever called it; samples with neither, such as accepting connections and parsing requests, by the Node module sampled):',
      '',
      table(['owner', 'ms', 'µs per request', '% of busy'], rows(c.owner, 20)),
      '',
      'On the stack (inclusive: a sample counts once for every camrelay function, package and Node module it was under; a middleware that calls next() holds everything after it):',
      '',
      table(['function / package / module', 'ms', 'µs per request', '% of busy'], rows(c.inclusive.filter((x) => !x.key.startsWith('node:internal/process/') && !x.key.startsWith('node:internal/timers')), 24)),
    );
    if (c.focus && c.focus.ms > 0) {
      out.push(
        '',
        `Inside \`${c.focus.fn}\` (src/api/http-error.ts: \`res.status(503).json({ error })\`, the 503 answer): ${fmt(c.focus.ms)} ms, ${per(c.focus.ms)} µs per request; self time by function (\`writev\` is the socket write system call, sampled as wall time):`,
        '',
        table(['function', 'ms', 'µs per request', `% of ${c.focus.fn}`], c.focus.leaves.slice(0, 10).map((x) => [x.key, fmt(x.ms), per(x.ms), fmt((100 * x.ms) / c.focus!.ms, 0)])),
      );
    }
  }
  return out.join('\n');
}
