// The baseline, side by side in the same run: rtsp-relay serving the same camera to the same
// numbers of WebSocket viewers. CPU and RSS of its server and its ffmpeg together, time to the
// first data and to the first picture, and what happens when the last viewer leaves. Then the
// ratios camrelay / rtsp-relay, from the other benchmarks of this run.
import { performance } from 'node:perf_hooks';
import { describeClip } from './clip.js';
import { fmt, median, MiB, sleep, type BenchContext } from './context.js';
import { FANOUT_KEY, type FanoutResult } from './fanout.js';
import { CpuWindow, rssBytes } from './proc.js';
import { machineLine, percentile, table } from './report.js';
import { ensureRtspRelay, FFMPEG, RtspRelay } from './rtsp-relay.js';
import { STOP_KEY, type StopResult } from './stop.js';
import { TTFF_KEY, type TtffResult } from './ttff.js';
import { receivedBetween, ViewerProcess, type ViewerStats } from './viewers.js';
import { WsViewer } from './ws-viewer.js';
import { waitFor } from '../test/helpers/wait.js';

export const BASELINE_KEY = 'baseline';

export interface BaselineRow {
  n: number;
  cpu: number;
  serverRssMiB: number;
  ffmpegRssMiB: number;
  kbitPerViewer: number;
  msgPerViewer: number;
  ffmpegs: number;
}

export interface BaselineResult {
  version: string;
  ffmpegCmd: string;
  rows: BaselineRow[];
  cold: { data: number[]; picture: number[] };
  live: { data: number[]; picture: number[] };
  stop: { ffmpegExited: number[]; cameraClosed: number[] };
}

export async function runBaseline(ctx: BenchContext): Promise<string> {
  const version = ensureRtspRelay(ctx.log);
  const quick = ctx.quick;
  const counts = quick ? [1, 10] : [1, 10, 25, 50];
  const windows = quick ? 1 : 3;
  const windowMs = quick ? 4000 : 10000;
  const settleMs = quick ? 1000 : 3000;
  const runs = quick ? 5 : 20;
  const rows: BaselineRow[] = [];
  let ffmpegCmd = '';
  for (const n of counts) {
    ctx.log(`baseline rtsp-relay ${version}: ${n} viewer(s)`);
    const relay = await RtspRelay.start(ctx.camera.url());
    const viewers = await ViewerProcess.start();
    try {
      await viewers.ask<ViewerStats>({ cmd: 'openWs', url: relay.url, count: n, timeoutMs: 30000 }, 300000);
      ffmpegCmd = relay.events.find((e) => e.event === 'spawn')?.cmd ?? '';
      await sleep(settleMs);
      const cpus: number[] = [];
      const kbit: number[] = [];
      const msgs: number[] = [];
      for (let w = 0; w < windows; w++) {
        const a = await viewers.ask<ViewerStats>({ cmd: 'stats' });
        const cpu = new CpuWindow(() => [relay.pid, ...relay.ffmpegPids()]);
        await sleep(windowMs); // the measurement window itself
        cpus.push(cpu.read().percent);
        const z = await viewers.ask<ViewerStats>({ cmd: 'stats' });
        if (z.open !== n) throw new Error(`${n - z.open} of ${n} WebSocket viewers are no longer connected`);
        const got = receivedBetween(a, z);
        kbit.push((got.bytes * 8) / got.seconds / 1000 / n);
        msgs.push(got.packets / got.seconds / n);
      }
      const ff = relay.ffmpegPids();
      rows.push({
        n,
        cpu: median(cpus),
        serverRssMiB: (rssBytes(relay.pid) ?? NaN) / MiB,
        ffmpegRssMiB: ff.reduce((acc, p) => acc + (rssBytes(p) ?? 0), 0) / MiB,
        kbitPerViewer: median(kbit),
        msgPerViewer: median(msgs),
        ffmpegs: ff.length,
      });
      const r = rows.at(-1)!;
      ctx.log(`  rtsp-relay ${fmt(r.cpu)}% of a core, RSS ${fmt(r.serverRssMiB)} + ${fmt(r.ffmpegRssMiB)} MiB (${r.ffmpegs} ffmpeg)`);
    } finally {
      await viewers.ask({ cmd: 'closeAll' }).catch(() => undefined);
      await viewers.stop();
      await relay.stop();
    }
  }

  ctx.log(`baseline: time to first frame and stop, ${runs} runs each`);
  const relay = await RtspRelay.start(ctx.camera.url());
  let timing: Pick<BaselineResult, 'cold' | 'live' | 'stop'>;
  try {
    timing = await timingRuns(ctx, relay, runs);
  } finally {
    await relay.stop();
  }
  const result: BaselineResult = { version, ffmpegCmd, rows, ...timing };
  ctx.shared.set(BASELINE_KEY, result);
  return report(ctx, result, { windows, windowMs, settleMs, runs });
}

async function timingRuns(ctx: BenchContext, relay: RtspRelay, runs: number): Promise<Pick<BaselineResult, 'cold' | 'live' | 'stop'>> {
  const cam = ctx.camera;
  const cold = { data: [] as number[], picture: [] as number[] };
  const live = { data: [] as number[], picture: [] as number[] };
  const stop = { ffmpegExited: [] as number[], cameraClosed: [] as number[] };
  for (let i = 0; i < runs; i++) {
    await waitFor('the camera to have no connection', () => cam.openConnections() === 0, 10000);
    const camFrom = cam.events.length;
    const from = relay.events.length;
    const v = new WsViewer(relay.url);
    try {
      await v.open();
      const pic = await v.picture(20000);
      cold.data.push(v.firstData! - v.opened);
      cold.picture.push(pic - v.opened);
      const spawned = await relay.waitEvent((e) => e.event === 'spawn', 1000, from);
      const exited = relay.waitEvent((e) => e.event === 'exit' && e.pid === spawned.pid, 10000, from);
      const camClosed = cam.waitEvent((e) => e.event === 'closed', 10000, camFrom).then(() => performance.now());
      const closedAt = v.close();
      stop.ffmpegExited.push((await exited).t! - (performance.timeOrigin + closedAt));
      stop.cameraClosed.push((await camClosed) - closedAt);
    } finally {
      v.ws.terminate();
    }
  }
  const holder = new WsViewer(relay.url);
  try {
    await holder.open();
    await holder.picture(20000);
    for (let i = 0; i < runs; i++) {
      await sleep(Math.random() * 1000); // join at a random moment
      const v = new WsViewer(relay.url);
      try {
        await v.open();
        const pic = await v.picture(20000);
        live.data.push(v.firstData! - v.opened);
        live.picture.push(pic - v.opened);
      } finally {
        v.close();
      }
    }
  } finally {
    holder.close();
  }
  return { cold, live, stop };
}

function report(ctx: BenchContext, r: BaselineResult, s: { windows: number; windowMs: number; settleMs: number; runs: number }): string {
  const p = (xs: number[], q: number) => fmt(percentile(xs, q), 0);
  const out = [
    `## Baseline: rtsp-relay ${r.version}, same camera, same run`,
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)} (the same gst-rtsp-server camera). rtsp-relay ${r.version} (npm, installed with \`npm ci --ignore-scripts\` into node_modules/.cache/camrelay-bench/baseline from bench/baseline/package-lock.json), set up as its README does (express + express-ws, \`proxy({ url, transport: 'tcp' })\`, bench/baseline/server.cjs), its ffmpeg-static pointed at Debian's ${FFMPEG} with FFMPEG_BIN. It runs: \`${r.ffmpegCmd.replace(/rtsp:\/\/\S+/, 'rtsp://…')}\` (a transcode to MPEG-1 for jsmpeg).`,
    `Viewers: plain \`ws\` clients in a separate Node process counting data messages (jsmpeg's transport). CPU is rtsp-relay's server process plus its ffmpeg child (/proc, user+system, % of one core), median of ${s.windows} window(s) of ${s.windowMs / 1000} s after ${s.settleMs / 1000} s of settling; RSS at the end; a fresh server per N.`,
    '',
    table(
      ['viewers', 'CPU % (server + ffmpeg)', 'RSS MiB server', 'RSS MiB ffmpeg', 'kbit/s per viewer', 'messages/s per viewer', 'ffmpeg processes'],
      r.rows.map((x) => [x.n, fmt(x.cpu), fmt(x.serverRssMiB), fmt(x.ffmpegRssMiB), fmt(x.kbitPerViewer, 0), fmt(x.msgPerViewer, 0), x.ffmpegs]),
    ),
    '',
    `Time to first frame and stop, ${s.runs} runs each (p50 = median of the runs, p95 by nearest rank). "Cold": no viewer before, so rtsp-relay starts ffmpeg; "live": another viewer keeps ffmpeg running. The clock starts when the WebSocket is created; "first data" is the first message after rtsp-relay's 8-byte header, "first picture" the first message holding an MPEG-1 sequence header (where jsmpeg can start). Stop: the only viewer closes its WebSocket; "ffmpeg exited" is when rtsp-relay's server saw its ffmpeg child exit.`,
    '',
    table(
      ['ms', 'p50', 'p95', 'max'],
      [
        ['cold: first data', p(r.cold.data, 50), p(r.cold.data, 95), p(r.cold.data, 100)],
        ['cold: first picture', p(r.cold.picture, 50), p(r.cold.picture, 95), p(r.cold.picture, 100)],
        ['live: first data', p(r.live.data, 50), p(r.live.data, 95), p(r.live.data, 100)],
        ['live: first picture', p(r.live.picture, 50), p(r.live.picture, 95), p(r.live.picture, 100)],
        ['stop: last viewer closed → ffmpeg exited', p(r.stop.ffmpegExited, 50), p(r.stop.ffmpegExited, 95), p(r.stop.ffmpegExited, 100)],
        ['stop: last viewer closed → camera connection closed', p(r.stop.cameraClosed, 50), p(r.stop.cameraClosed, 95), p(r.stop.cameraClosed, 100)],
      ],
    ),
    '',
    `Stop behaviour: rtsp-relay sends SIGTERM to its ffmpeg when its viewer count reaches 0 (${r.stop.ffmpegExited.length} of ${s.runs} runs saw ffmpeg exit), so the camera is released; it keeps no state in between, so every cold start pays for a new ffmpeg and a new camera session.`,
    '',
  ];
  out.push(...ratios(ctx, r));
  return out.join('\n');
}

function ratios(ctx: BenchContext, r: BaselineResult): string[] {
  const fanout = ctx.shared.get(FANOUT_KEY) as FanoutResult[] | undefined;
  const ttff = ctx.shared.get(TTFF_KEY) as TtffResult[] | undefined;
  const stop = ctx.shared.get(STOP_KEY) as StopResult[] | undefined;
  if (!fanout && !ttff && !stop) return ['_No camrelay figures in this run (`--only baseline`): no ratios._'];
  const out = ['### camrelay / rtsp-relay (same run; below 1 means camrelay uses less or is faster)', ''];
  if (fanout) {
    const head = ['viewers', 'rtsp-relay CPU %'];
    for (const f of fanout) head.push(`${f.backend.label}: CPU %`, 'ratio');
    head.push('rtsp-relay RSS MiB (server + ffmpeg)');
    for (const f of fanout) head.push(`${f.backend.label}: RSS MiB`, 'ratio');
    const rows = r.rows.map((b) => {
      const row: (string | number)[] = [b.n, fmt(b.cpu)];
      for (const f of fanout) {
        const c = f.rows.find((x) => x.n === b.n);
        row.push(fmt(c?.cpu), c ? fmt(c.cpu / b.cpu, 2) : '–');
      }
      const rss = b.serverRssMiB + b.ffmpegRssMiB;
      row.push(fmt(rss));
      for (const f of fanout) {
        const c = f.rows.find((x) => x.n === b.n);
        row.push(fmt(c?.rssMiB), c ? fmt(c.rssMiB / rss, 2) : '–');
      }
      return row;
    });
    out.push(table(head, rows), '');
  }
  const rows: (string | number)[][] = [];
  for (const t of ttff ?? []) {
    rows.push([`${t.backend.label}: live, first frame p50 vs rtsp-relay live first picture`, fmt(percentile(t.live.total, 50), 0), p50(r.live.picture), ratio(percentile(t.live.total, 50), percentile(r.live.picture, 50))]);
    rows.push([`${t.backend.label}: idle, first frame p50 vs rtsp-relay cold first picture`, fmt(percentile(t.idle.total, 50), 0), p50(r.cold.picture), ratio(percentile(t.idle.total, 50), percentile(r.cold.picture, 50))]);
  }
  for (const st of stop ?? []) {
    rows.push([`${st.backend.label}: RTSP source released p50 vs rtsp-relay ffmpeg exited`, fmt(percentile(st.rtsp.closed, 50), 0), p50(r.stop.ffmpegExited), ratio(percentile(st.rtsp.closed, 50), percentile(r.stop.ffmpegExited, 50))]);
    rows.push([`${st.backend.label}: ffmpeg source, ffmpeg exited p50 vs rtsp-relay ffmpeg exited`, fmt(percentile(st.ffmpeg.ffmpegExited, 50), 0), p50(r.stop.ffmpegExited), ratio(percentile(st.ffmpeg.ffmpegExited, 50), percentile(r.stop.ffmpegExited, 50))]);
  }
  if (rows.length) out.push(table(['ms', 'camrelay', 'rtsp-relay', 'ratio'], rows), '');
  return out;
}

const p50 = (xs: number[]) => fmt(percentile(xs, 50), 0);
const ratio = (a: number, b: number) => fmt(a / b, 2);
