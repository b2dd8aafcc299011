// MSE fan-out: 1, 10 and 50 MSE viewers of one camera (go2rtc's {"type":"mse"} on /api/ws, one
// shared fMP4 muxer), camrelay's CPU and RSS with them, and the first fragment of a viewer joining
// the live stream. The viewers are `ws` clients in a process of their own (bench/mse-viewer-process.ts)
// that read every message and count its bytes.
import { Camrelay } from './camrelay.js';
import { describeClip } from './clip.js';
import { fmt, median, MiB, sleep, type BenchContext } from './context.js';
import { MseViewers, type MseStats } from './mse-viewers.js';
import { CpuWindow, rssBytes } from './proc.js';
import { machineLine, percentile, table } from './report.js';

export interface MseRow {
  n: number;
  /** camrelay, % of one core (median of the windows). */
  cpu: number;
  viewersCpu: number;
  rssMiB: number;
  rssIdleMiB: number;
  /** Mean over viewers of what each read, Mbit/s, and the slowest one's. */
  mbitPerViewer: number;
  minMbit: number;
  /** Joiners' mse request → first fragment, ms. */
  join: number[];
}

const COUNTS = [1, 10, 50] as const;
/** Targets of issue 15. */
const CPU_PER_VIEWER_TARGET = 0.1;
const JOIN_P95_TARGET_MS = 300;

export async function runMse(ctx: BenchContext): Promise<string> {
  const s = { windows: ctx.quick ? 1 : 3, windowMs: ctx.quick ? 5000 : 10000, settleMs: 3000, joins: ctx.quick ? 5 : 20 };
  const rows: MseRow[] = [];
  for (const n of COUNTS) {
    ctx.log(`mse: ${n} viewers`);
    const r = await oneCount(ctx, n, s);
    rows.push(r);
    ctx.log(`  camrelay ${fmt(r.cpu)}% of a core, RSS ${fmt(r.rssMiB)} MiB, ${fmt(r.mbitPerViewer, 2)} Mbit/s per viewer (min ${fmt(r.minMbit, 2)}), join p50 ${fmt(percentile(r.join, 50), 0)} ms p95 ${fmt(percentile(r.join, 95), 0)} ms`);
  }
  return report(ctx, s, rows);
}

async function oneCount(ctx: BenchContext, n: number, s: { windows: number; windowMs: number; settleMs: number; joins: number }): Promise<MseRow> {
  const relay = await Camrelay.start({ streams: { cam: ctx.camera.url() } });
  const viewers = await MseViewers.start();
  const url = `ws://127.0.0.1:${new URL(relay.base).port}/api/ws?src=cam`;
  try {
    const rssIdle = rssBytes(relay.pid) ?? NaN;
    await viewers.ask<MseStats>({ cmd: 'open', url, count: n, timeoutMs: 20000 }, 300000);
    await sleep(s.settleMs);
    const cpus: number[] = [];
    const vcpus: number[] = [];
    const per: number[][] = [];
    for (let w = 0; w < s.windows; w++) {
      const a = await viewers.ask<MseStats>({ cmd: 'stats' });
      const cpu = new CpuWindow(() => [relay.pid]);
      const vcpu = new CpuWindow(() => [viewers.pid]);
      await sleep(s.windowMs);
      cpus.push(cpu.read().percent);
      vcpus.push(vcpu.read().percent);
      const z = await viewers.ask<MseStats>({ cmd: 'stats' });
      if (z.open !== n) throw new Error(`${n - z.open} of ${n} MSE viewers are no longer connected`);
      const secs = (z.at - a.at) / 1000;
      per.push(z.bytes.map((b, i) => ((b - a.bytes[i]!) * 8) / secs / 1e6));
    }
    const rss = rssBytes(relay.pid) ?? NaN;
    // Joiners after the windows, so that their churn is not in the CPU figures; each at a random
    // point of the GOP, as people join.
    const gopMs = (1000 * ctx.clip.gop) / ctx.clip.fps;
    const join: number[] = [];
    for (let i = 0; i < s.joins; i++) {
      await sleep(Math.random() * gopMs);
      join.push((await viewers.ask<{ ms: number }>({ cmd: 'join', url, timeoutMs: 10000 }, 20000)).ms);
    }
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    return {
      n,
      cpu: median(cpus),
      viewersCpu: median(vcpus),
      rssMiB: rss / MiB,
      rssIdleMiB: rssIdle / MiB,
      mbitPerViewer: median(per.map(mean)),
      minMbit: Math.min(...per.map((p) => Math.min(...p))),
      join,
    };
  } catch (e) {
    throw new Error(`${String(e)}; ${relay.problemsSince(0)}`);
  } finally {
    await viewers.ask({ cmd: 'closeAll' }).catch(() => undefined);
    await viewers.stop();
    await relay.stop();
  }
}

function report(ctx: BenchContext, s: { windows: number; windowMs: number; settleMs: number; joins: number }, rows: MseRow[]): string {
  const first = rows[0]!;
  const last = rows.at(-1)!;
  const perAdded = (x: MseRow) => (x === first ? '–' : fmt((x.cpu - first.cpu) / (x.n - first.n), 3));
  const slope = (last.cpu - first.cpu) / (last.n - first.n);
  const allJoins = rows.flatMap((r) => r.join);
  const p95 = percentile(allJoins, 95);
  return [
    '## MSE fan-out',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)} (gst-rtsp-server, RTSP/TCP), one camera. camrelay is the bundle (bench/camrelay.ts), a fresh process per viewer count. ` +
      `The viewers are \`ws\` clients in a process of their own, each sending go2rtc's \`{"type":"mse"}\` with its codec list on \`/api/ws?src=cam\` and reading every message (init, then moof+mdat fragments), counting bytes. ` +
      `CPU is camrelay's utime+stime (/proc) over ${s.windows} window(s) of ${s.windowMs / 1000} s (median), after ${s.settleMs / 1000} s with every viewer playing; RSS at the end of the windows (in brackets: before any viewer). ` +
      `First fragment: after the windows, ${s.joins} more viewers join one at a time at a random point of the ${ctx.clip.gop / ctx.clip.fps} s GOP, each timed from sending its mse request (the socket open) to its first fragment (the binary message after the init), then leave.`,
    '',
    table(
      ['MSE viewers', 'camrelay CPU (% of a core)', 'per added viewer (% of a core)', 'RSS MiB (before viewers)', 'Mbit/s per viewer (min)', 'viewers process CPU (%)', 'join → first fragment p50 / p95 (ms)'],
      rows.map((x) => [
        x.n,
        fmt(x.cpu),
        perAdded(x),
        `${fmt(x.rssMiB)} (${fmt(x.rssIdleMiB)})`,
        `${fmt(x.mbitPerViewer, 2)} (${fmt(x.minMbit, 2)})`,
        fmt(x.viewersCpu),
        `${fmt(percentile(x.join, 50), 0)} / ${fmt(percentile(x.join, 95), 0)}`,
      ]),
    ),
    '',
    `- CPU per added viewer from ${first.n} to ${last.n}: ${fmt(slope, 3)} % of a core (target at most ${CPU_PER_VIEWER_TARGET}): **${slope <= CPU_PER_VIEWER_TARGET ? 'met' : 'not met'}**.`,
    `- A joiner's first fragments are the GOP the shared muxer keeps (from its keyframe), sent at once: the first frame is there without waiting for the next keyframe, up to one GOP (${ctx.clip.gop / ctx.clip.fps} s) behind live until the player jumps to the live edge.`,
    `- First fragment for a viewer joining the live stream, all ${allJoins.length} joins: p50 ${fmt(percentile(allJoins, 50), 0)} ms, p95 ${fmt(p95, 0)} ms (target p95 under ${JOIN_P95_TARGET_MS} ms): **${p95 < JOIN_P95_TARGET_MS ? 'met' : 'not met'}**.`,
  ].join('\n');
}
