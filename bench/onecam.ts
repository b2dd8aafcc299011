// One camera with one viewer (issue 17, deliverable 2): what a home's usual stream costs camrelay.
// The CPU of camrelay's process split by thread name (main JavaScript thread, libdatachannel's,
// libuv's, V8's), medians of interleaved windows, and one profiled run of the same (V8
// --cpu-prof on src/ through tsx) naming where the main thread's time goes.
import { readdirSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Camrelay, freeUdpPort, metricValue } from './camrelay.js';
import { PlainSender } from './plain-sender.js';
import { CACHE } from './clip.js';
import { type BenchContext, fmt, median, MiB, sleep } from './context.js';
import { monotonicMicros, newestProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { CLK_TCK, CpuWindow, rssBytes, rssParts, type RssParts } from './proc.js';
import { machineLine } from './report.js';
import { receivedBetween, ViewerProcess, type ViewerStats } from './viewers.js';

const WARMUP_SLOT_MS = 10000;

interface Window {
  cpu: number;
  byThread: Map<string, number>;
  fps: number;
  lost: number;
}

/** CPU seconds of each thread of `pid`, summed by thread name (pool threads share a name). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / CLK_TCK);
    } catch {
      // a thread that ended between readdir and read
    }
  }
  return out;
}

interface Sender {
  pid: number;
  base: string;
  metrics?: () => Promise<string>;
  stop(): Promise<void>;
}

/** RSS by part, with V8's own heap and external-memory figures (camrelay's /metrics). */
interface Memory {
  parts: RssParts;
  heapTotal?: number;
  external?: number;
}

/** Only camrelay's memory is reported: undefined for the library alone (it serves no /metrics). */
async function memory(s: Sender): Promise<Memory | undefined> {
  if (!s.metrics) return undefined;
  const parts = rssParts(s.pid);
  if (!parts) return undefined;
  const text = await s.metrics();
  return { parts, heapTotal: metricValue(text, 'nodejs_heap_size_total_bytes'), external: metricValue(text, 'nodejs_external_memory_bytes') };
}

const camrelay = (ctx: BenchContext, profDir?: string) => (): Promise<Sender> => Camrelay.start({ streams: { cam: ctx.camera.url() }, backend: 'node-datachannel', cpuProfDir: profDir });
const library = (ctx: BenchContext) => async (): Promise<Sender> => PlainSender.start('node-datachannel', ctx.clip, [String(await freeUdpPort())]);

interface Run {
  w: Window[];
  /** CPU % of each 10 s slot of the settling time, from the viewer's first keyframe on. */
  warmup: number[];
  rss: number;
  idle?: Memory;
  end?: Memory;
  from: number;
  to: number;
}

async function run(start: () => Promise<Sender>, windows: number, windowMs: number, settleMs: number): Promise<Run> {
  const cam = await start();
  const idle = await memory(cam);
  const viewers = await ViewerProcess.start();
  try {
    await viewers.ask<ViewerStats>({ cmd: 'openWebrtc', base: cam.base, src: 'cam', count: 1, timeoutMs: 30000 }, 60000);
    const warmup: number[] = [];
    for (let left = settleMs; left > 0; left -= WARMUP_SLOT_MS) {
      const slot = new CpuWindow(() => [cam.pid]);
      await sleep(Math.min(WARMUP_SLOT_MS, left));
      if (left >= WARMUP_SLOT_MS) warmup.push(slot.read().percent);
    }
    const from = monotonicMicros();
    const w: Window[] = [];
    for (let i = 0; i < windows; i++) {
      const a = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      const t0 = threadCpu(cam.pid);
      const cpu = new CpuWindow(() => [cam.pid]);
      await sleep(windowMs);
      const c = cpu.read().percent;
      const t1 = threadCpu(cam.pid);
      const z = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      const r = receivedBetween(a, z);
      const byThread = new Map<string, number>();
      for (const [k, v] of t1) byThread.set(k, (100 * (v - (t0.get(k) ?? 0))) / (windowMs / 1000));
      w.push({ cpu: c, byThread, fps: r.fps[0] ?? NaN, lost: r.lost });
    }
    return { w, warmup, rss: rssBytes(cam.pid) ?? NaN, idle, end: await memory(cam), from, to: monotonicMicros() };
  } finally {
    await viewers.ask({ cmd: 'closeAll', base: cam.base }).catch(() => undefined);
    await viewers.stop();
    await cam.stop();
  }
}

export async function runOnecam(ctx: BenchContext): Promise<string> {
  const windows = ctx.quick ? 3 : 5;
  const windowMs = ctx.quick ? 5000 : 10000;
  // V8 optimizes a function once it has run enough of its bytecode, and code that runs once per
  // frame (25 times a second) gets there only after a minute or more: until then the CPU reads
  // higher than it stays (the warm-up table). The windows measure what a camera costs for weeks.
  const settleMs = ctx.quick ? 3000 : 90000;
  const all: Window[] = [];
  const lib: Window[] = [];
  const rss: number[] = [];
  const mem: { idle: Memory; end: Memory }[] = [];
  const warm: number[][] = [];
  const warmLib: number[][] = [];
  // Fresh processes for each round, camrelay and the library alone in turns, so that a slow
  // stretch of a shared machine falls on both.
  for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
    const r = await run(camrelay(ctx), windows, windowMs, settleMs);
    all.push(...r.w);
    warm.push(r.warmup);
    rss.push(r.rss);
    if (r.idle && r.end) mem.push({ idle: r.idle, end: r.end });
    ctx.log(`  onecam round ${round + 1}: camrelay ${r.w.map((x) => fmt(x.cpu, 2)).join(' / ')}% of a core`);
    const l = await run(library(ctx), windows, windowMs, settleMs);
    lib.push(...l.w);
    warmLib.push(l.warmup);
    ctx.log(`  onecam round ${round + 1}: node-datachannel alone ${l.w.map((x) => fmt(x.cpu, 2)).join(' / ')}% of a core`);
  }
  const threads = [...new Set(all.flatMap((w) => [...w.byThread.keys()]))];
  const byThread = threads.map((t) => ({ t, pct: median(all.map((w) => w.byThread.get(t) ?? 0)) })).filter((x) => x.pct >= 0.05);
  byThread.sort((a, b) => b.pct - a.pct);
  const dir = path.join(CACHE, 'profiles', 'onecam');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let prof: ProfileSummary | undefined;
  if (!ctx.quick || process.env.ONECAM_PROFILE) {
    const p = await run(camrelay(ctx, dir), 1, 20000, settleMs);
    const file = newestProfile(dir);
    if (file) prof = summarizeProfile(file, p.from, p.to, 20);
  }
  const out = [
    '## One camera, one viewer: where its CPU goes',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. The bench camera (1920x1080 25 fps H.264, RTSP/TCP from gst-rtsp-server), camrelay's bundle on node-datachannel, one node-datachannel viewer in its own process. The windows start ${settleMs / 1000} s after the viewer's first keyframe. ${all.length} windows of ${windowMs / 1000} s over ${rss.length} fresh camrelay(s), medians; CPU per thread from /proc/<pid>/task (threads of one name summed).`,
    '',
    '| figure | value |',
    '| --- | --- |',
    `| camrelay CPU, % of one core | **${fmt(median(all.map((w) => w.cpu)), 2)}** (windows ${fmt(Math.min(...all.map((w) => w.cpu)), 2)}–${fmt(Math.max(...all.map((w) => w.cpu)), 2)}) |`,
    `| node-datachannel alone (bench/plain-ndc-server.ts: the clip from memory, the same send calls, no RTSP, no depacketizing), % of one core | ${fmt(median(lib.map((w) => w.cpu)), 2)} (windows ${fmt(Math.min(...lib.map((w) => w.cpu)), 2)}–${fmt(Math.max(...lib.map((w) => w.cpu)), 2)}) |`,
    `| camrelay less the library alone | ${fmt(median(all.map((w) => w.cpu)) - median(lib.map((w) => w.cpu)), 2)} |`,
    `| RSS at the end | ${fmt(median(rss) / MiB)} MiB |`,
    `| viewer fps / packets lost | ${fmt(median(all.map((w) => w.fps)), 2)} / ${all.reduce((x, w) => x + w.lost, 0)} |`,
    ...byThread.map((x) => `| thread \`${x.t}\` | ${fmt(x.pct, 2)}% |`),
    '',
  ];
  if (warm[0]!.length > 0) {
    const slot = (runs: number[][], i: number) => fmt(median(runs.map((r) => r[i] ?? NaN)), 2);
    out.push(
      `CPU while warming up: each ${WARMUP_SLOT_MS / 1000} s of the settling time from the viewer's first keyframe, % of one core, median of the rounds. The windows above start after it.`,
      '',
      `| since the first keyframe | ${warm[0]!.map((_, i) => `${(i * WARMUP_SLOT_MS) / 1000}–${((i + 1) * WARMUP_SLOT_MS) / 1000} s`).join(' | ')} |`,
      `| --- | ${warm[0]!.map(() => '---').join(' | ')} |`,
      `| camrelay | ${warm[0]!.map((_, i) => slot(warm, i)).join(' | ')} |`,
      `| node-datachannel alone | ${warm[0]!.map((_, i) => slot(warmLib, i)).join(' | ')} |`,
      '',
    );
  }
  if (mem.length > 0) {
    const row = (label: string, get: (m: Memory) => number | undefined) => {
      const i = median(mem.map((m) => get(m.idle) ?? NaN));
      const e = median(mem.map((m) => get(m.end) ?? NaN));
      return `| ${label} | ${fmt(i / MiB)} | ${fmt(e / MiB)} | ${fmt((e - i) / MiB)} |`;
    };
    out.push(
      `camrelay's resident memory by part (/proc/<pid>/smaps), started and idle, then at the end of a round with its viewer; medians of ${mem.length} round(s), MiB. V8's heap and external memory are its own figures (/metrics): the heap lies in the anonymous part, Buffers' memory mostly in the malloc heap, and external memory swings with V8's collections.`,
      '',
      '| part | idle | camera + 1 viewer | difference |',
      '| --- | --- | --- | --- |',
      row('node executable (code and read-only data: file pages, shared with any other node process)', (m) => m.parts.node),
      row("node-datachannel's native addon (file pages)", (m) => m.parts.addon),
      row('other libraries', (m) => m.parts.libraries),
      row("malloc's main arena ([heap])", (m) => m.parts.mallocHeap),
      row('anonymous (V8 heap, other threads\' arenas, stacks)', (m) => m.parts.anonymous),
      row('**all**', (m) => m.parts.node + m.parts.addon + m.parts.libraries + m.parts.mallocHeap + m.parts.anonymous),
      row('V8 heap, committed', (m) => m.heapTotal),
      row('V8 external memory (Buffers)', (m) => m.external),
      '',
    );
  }
  if (prof) {
    out.push(`Main thread under --cpu-prof (src/ through tsx, one 20 s window): ${prof.samples} samples, ${fmt(prof.busyPercent)}% not idle.`, '', '| function (self time) | % of busy samples |', '| --- | --- |');
    for (const f of prof.byFunction) out.push(`| \`${f.fn}\` | ${fmt(f.percent)} |`);
    out.push('', '| place | % of busy samples |', '| --- | --- |');
    for (const p of prof.byPlace) out.push(`| ${p.place} | ${fmt(p.percent)} |`);
  }
  return out.join('\n');
}
