// The house (issue 17): what a Home Assistant home asks of camrelay on a small box. Sixteen
// cameras (one gst-rtsp-server process serving 16 mounts of a pre-encoded clip, so the cameras
// encode nothing), two WebRTC viewers on each joining over 10 s, two MSE viewers, and a JPEG
// snapshot of every camera every 10 s, as the dashboards poll them; then one steady window of
// camrelay's CPU (its node process and its ffmpeg children, reaped ones included), RSS,
// event-loop lag, every viewer's frame rate and loss, and the snapshots' latency.
// The cameras are 1080p when the camera process keeps 16 of them at their frame rate here, 720p
// otherwise: a probe decides, and the report says what it saw.
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { EVENT_LOOP_SAMPLE_MS } from '../src/api/metrics.js';
import { GstCamera } from '../test/helpers/gst-camera.js';
import { Camrelay, metricValue } from './camrelay.js';
import { CLIP_720P, describeClip, ensureClip, type Clip } from './clip.js';
import { fmt, median, MiB, sleep, type BenchContext } from './context.js';
import { MseViewers, type MseStats } from './mse-viewers.js';
import { childrenOf, cpuSeconds, rssBytes, rssParts, treeCpuSeconds, type RssParts } from './proc.js';
import { machineLine, percentile, table } from './report.js';
import { Sampler } from './snapshots.js';
import { receivedBetween, ViewerProcess, type ViewerStats } from './viewers.js';

const CAMERAS = 16;
const VIEWERS_PER_CAMERA = 2;
const JOIN_MS = 10000;
const SNAPSHOT_EVERY_MS = 10000;
/** The cameras the two MSE viewers watch (besides their WebRTC viewers). */
const MSE_CAMERAS = [1, 2];
/** GET /api from another process, one every this many ms: often enough for a p99, cheap for camrelay. */
const SAMPLER_PAUSE_MS = 500;
/** A viewer "at the camera's frame rate": frames counted in the window within 2% of it (the window's edges cut frames). */
const FPS_SHARE = 0.98;

/** Issue 17's targets for the house. */
const TARGET = { cpuPercent: 50, snapshotP95Ms: 400, lagP99Ms: 20 };

interface Probe {
  clip: Clip;
  seconds: number;
  cameraCpu: number;
  /** The slowest of the probe's viewers (one per camera). */
  minFps: number;
  saturated: boolean;
}

interface Snapshot {
  cam: number;
  /** performance.now() when sent. */
  t: number;
  ms: number;
  /** 0: no answer (error or the deadline). */
  status: number;
  bytes: number;
}

interface HouseResult {
  clip: Clip;
  probe: Probe;
  backend: string;
  seconds: number;
  /** % of one core over the window: camrelay's node process, its ffmpeg children, and per third of the window the total. */
  cpu: { self: number; children: number; thirds: number[] };
  others: { camera: number; viewers: number; mse: number };
  rss: { selfMedianMiB: number; selfMaxMiB: number; childrenMaxMiB: number; childrenMax: number };
  /** camrelay's RSS by part at the window's end, and V8's heap and external memory then (/metrics). */
  parts?: RssParts;
  heapTotal?: number;
  external?: number;
  lagP99Ms?: number;
  api: { n: number; p50: number; p99: number; failed: number };
  webrtc: { src: string; fps: number; lost: number; packets: number }[];
  mse: { src: string; mbit: number }[];
  mseOpen: number;
  snapshots: Snapshot[];
  retries: number;
}

export async function runHouse(ctx: BenchContext): Promise<string> {
  const s = ctx.quick ? { probeMs: 5000, settleMs: 3000, windowMs: 15000 } : { probeMs: 10000, settleMs: 10000, windowMs: 60000 };
  // The run's clip is the 1080p one; whether the camera process serves 16 of it decides.
  const probe = await probeCamera(ctx, ctx.clip, s.probeMs);
  ctx.log(`house: 16 × ${ctx.clip.height}p: camera process ${fmt(probe.cameraCpu)}% of a core, slowest viewer ${fmt(probe.minFps)} fps → ${probe.saturated ? 'saturated: the house runs at 720p' : 'the house runs at 1080p'}`);
  const clip = probe.saturated ? ensureClip(CLIP_720P, ctx.log) : ctx.clip;
  const r = await house(ctx, clip, probe, s);
  const total = r.cpu.self + r.cpu.children;
  ctx.log(`house: camrelay ${fmt(total)}% of a core (node ${fmt(r.cpu.self)}% + ffmpeg ${fmt(r.cpu.children)}%), snapshot p95 ${fmt(percentile(r.snapshots.map((x) => x.ms), 95), 0)} ms, lag p99 ${fmt(r.lagP99Ms)} ms, slowest viewer ${fmt(Math.min(...r.webrtc.map((v) => v.fps)))} fps`);
  return report(ctx, s, r);
}

/** The camera process serving 16 mounts of `clip`, each pulled by camrelay for one viewer. */
async function probeCamera(ctx: BenchContext, clip: Clip, ms: number): Promise<Probe> {
  return withHouse(clip, async (camera, relay) => {
    const viewers = await ViewerProcess.start();
    try {
      await Promise.all(cams().map((i) => viewers.ask<ViewerStats>({ cmd: 'openWebrtc', base: relay.base, src: `cam${i}`, count: 1, timeoutMs: 30000 }, 60000)));
      await sleep(2000);
      const a = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      const c0 = cpuSeconds(camera.pid!) ?? NaN;
      const t0 = performance.now();
      await sleep(ms);
      const cameraCpu = (100 * ((cpuSeconds(camera.pid!) ?? NaN) - c0)) / ((performance.now() - t0) / 1000);
      const z = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      const minFps = Math.min(...receivedBetween(a, z).fps);
      // Saturated: the camera process near a whole core, or a viewer short of the frame rate.
      return { clip, seconds: ms / 1000, cameraCpu, minFps, saturated: cameraCpu >= 90 || minFps < clip.fps * 0.95 };
    } catch (e) {
      throw new Error(`house probe: ${String(e)}; ${relay.problemsSince(0)}`);
    } finally {
      await viewers.ask({ cmd: 'closeAll', base: relay.base }).catch(() => undefined);
      await viewers.stop();
    }
  });
}

const cams = () => Array.from({ length: CAMERAS }, (_, i) => i + 1);

/** A camera process with 16 mounts of `clip` and a camrelay with a stream for each, for `body`. */
async function withHouse<T>(clip: Clip, body: (camera: GstCamera, relay: Camrelay) => Promise<T>): Promise<T> {
  const camera = await GstCamera.start({ pipeline: 'h264-file', file: clip.file, fps: clip.fps, mounts: CAMERAS });
  try {
    const relay = await Camrelay.start({ streams: Object.fromEntries(cams().map((i) => [`cam${i}`, camera.mountUrl(i)])) });
    try {
      return await body(camera, relay);
    } finally {
      await relay.stop();
    }
  } finally {
    await camera.stop();
  }
}

async function house(ctx: BenchContext, clip: Clip, probe: Probe, s: { settleMs: number; windowMs: number }): Promise<HouseResult> {
  return withHouse(clip, async (camera, relay) => {
    const viewers = await ViewerProcess.start();
    const mse = await MseViewers.start();
    const snapshots = new SnapshotPoller(relay.base);
    let sampler: Sampler | undefined;
    try {
      ctx.log(`house: ${CAMERAS * VIEWERS_PER_CAMERA} WebRTC viewers joining over ${JOIN_MS / 1000} s, snapshots of every camera every ${SNAPSHOT_EVERY_MS / 1000} s`);
      snapshots.start();
      // First one viewer per camera, then the second: each camera starts on its first viewer,
      // the second joins a live stream.
      const n = CAMERAS * VIEWERS_PER_CAMERA;
      const t0 = performance.now();
      const joins = Array.from({ length: n }, async (_, k) => {
        await sleep(t0 + (k * JOIN_MS) / n - performance.now());
        return viewers.ask<ViewerStats>({ cmd: 'openWebrtc', base: relay.base, src: `cam${(k % CAMERAS) + 1}`, count: 1, timeoutMs: 30000 }, 60000);
      });
      await Promise.all(joins);
      for (const i of MSE_CAMERAS) await mse.ask<MseStats>({ cmd: 'open', url: `ws://127.0.0.1:${relay.port}/api/ws?src=cam${i}`, count: 1, timeoutMs: 20000 }, 60000);
      sampler = await Sampler.start(relay.base, SAMPLER_PAUSE_MS, 1);
      await sleep(s.settleMs);

      ctx.log(`house: steady window, ${s.windowMs / 1000} s`);
      const rss = new RssSampler(relay.pid);
      await relay.metrics(); // resets camrelay's event-loop histogram: the lag read below is the window's
      const a = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      const ma = await mse.ask<MseStats>({ cmd: 'stats' });
      const from = performance.now();
      const fromEpoch = Date.now();
      const others0 = [cpuSeconds(camera.pid!), cpuSeconds(viewers.pid), cpuSeconds(mse.pid)];
      const tree = [treeCpuSeconds(relay.pid)];
      const at = [performance.now()];
      for (let k = 1; k <= 3; k++) {
        await sleep(from + (k * s.windowMs) / 3 - performance.now());
        tree.push(treeCpuSeconds(relay.pid));
        at.push(performance.now());
      }
      const others1 = [cpuSeconds(camera.pid!), cpuSeconds(viewers.pid), cpuSeconds(mse.pid)];
      const until = performance.now();
      const untilEpoch = Date.now();
      const z = await viewers.ask<ViewerStats>({ cmd: 'stats' });
      const mz = await mse.ask<MseStats>({ cmd: 'stats' });
      const metricsText = await relay.metrics();
      const lag = metricValue(metricsText, 'nodejs_eventloop_lag_p99_seconds');
      const parts = rssParts(relay.pid);
      rss.stop();
      // The window's last snapshots are answered after it: wait for them, so the slow ones count.
      await snapshots.stop();
      if (tree.some((t) => !t)) throw new Error('camrelay exited during the window');
      const seconds = (until - from) / 1000;
      const pct = (x0: number | undefined, x1: number | undefined) => (100 * ((x1 ?? NaN) - (x0 ?? NaN))) / seconds;
      const got = receivedBetween(a, z);
      const lostPer = z.lost.map((l, i) => l - a.lost[i]!);
      const api = sampler.between(fromEpoch, untilEpoch);
      const apiOk = api.filter((x) => x.status === 200).map((x) => x.ms);
      const secs = (mz.at - ma.at) / 1000;
      return {
        clip,
        probe,
        backend: relay.backendInLog() ?? 'camrelay\'s default',
        seconds,
        cpu: {
          self: pct(tree[0]!.self, tree[3]!.self),
          children: pct(tree[0]!.children, tree[3]!.children),
          thirds: [1, 2, 3].map((k) => (100 * (tree[k]!.self + tree[k]!.children - tree[k - 1]!.self - tree[k - 1]!.children)) / ((at[k]! - at[k - 1]!) / 1000)),
        },
        others: { camera: pct(others0[0], others1[0]), viewers: pct(others0[1], others1[1]), mse: pct(others0[2], others1[2]) },
        rss: rss.summary(),
        parts,
        heapTotal: metricValue(metricsText, 'nodejs_heap_size_total_bytes'),
        external: metricValue(metricsText, 'nodejs_external_memory_bytes'),
        lagP99Ms: lag === undefined ? undefined : Math.max(0, lag * 1000 - EVENT_LOOP_SAMPLE_MS),
        api: { n: api.length, p50: percentile(apiOk, 50), p99: percentile(apiOk, 99), failed: api.length - apiOk.length },
        webrtc: z.srcs.map((src, i) => ({ src, fps: got.fps[i]!, lost: lostPer[i]!, packets: z.packets[i]! - a.packets[i]! })),
        mse: mz.bytes.map((b, i) => ({ src: `cam${MSE_CAMERAS[i]}`, mbit: ((b - ma.bytes[i]!) * 8) / secs / 1e6 })),
        mseOpen: mz.open,
        snapshots: snapshots.samples.filter((x) => x.t >= from && x.t <= until),
        retries: z.retries,
      };
    } catch (e) {
      throw new Error(`house: ${String(e)}; ${relay.problemsSince(0)}`);
    } finally {
      await snapshots.stop();
      await sampler?.stop();
      await viewers.ask({ cmd: 'closeAll', base: relay.base }).catch(() => undefined);
      await mse.ask({ cmd: 'closeAll' }).catch(() => undefined);
      await viewers.stop();
      await mse.stop();
    }
  });
}

/** GET /api/frame.jpeg of every camera every SNAPSHOT_EVERY_MS, the cameras spread over the period, on a fixed schedule (a dashboard's timer does not wait for the last answer). */
class SnapshotPoller {
  readonly samples: Snapshot[] = [];
  #timers = new Set<NodeJS.Timeout>();
  #inflight = new Set<Promise<void>>();
  #stopped = false;

  constructor(private readonly base: string) {}

  start(): void {
    const t0 = performance.now();
    for (const cam of cams()) {
      let k = 0;
      const next = () => {
        if (this.#stopped) return;
        const due = t0 + ((cam - 1) * SNAPSHOT_EVERY_MS) / CAMERAS + k++ * SNAPSHOT_EVERY_MS;
        const t = setTimeout(() => {
          this.#timers.delete(t);
          const p = this.#get(cam).finally(() => this.#inflight.delete(p));
          this.#inflight.add(p);
          next();
        }, Math.max(0, due - performance.now()));
        this.#timers.add(t);
      };
      next();
    }
  }

  #get(cam: number): Promise<void> {
    const t = performance.now();
    return new Promise((resolve) => {
      let bytes = 0;
      const done = (status: number) => {
        this.samples.push({ cam, t, ms: performance.now() - t, status, bytes });
        resolve();
      };
      const req = http.get(`${this.base}/api/frame.jpeg?src=cam${cam}`, { agent: false, timeout: 10000 }, (res) => {
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.once('end', () => done(res.statusCode ?? 0));
        res.once('error', () => done(0));
      });
      req.once('timeout', () => req.destroy(new Error('timeout')));
      req.once('error', () => done(0));
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.all([...this.#inflight]);
  }
}

/** camrelay's RSS and its children's, every second. */
class RssSampler {
  #self: number[] = [];
  #children: number[] = [];
  #count: number[] = [];
  #timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 1000);
  }

  #sample(): void {
    const kids = childrenOf(this.pid);
    this.#self.push(rssBytes(this.pid) ?? NaN);
    this.#children.push(kids.reduce((a, c) => a + (rssBytes(c.pid) ?? 0), 0));
    this.#count.push(kids.length);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#sample();
  }

  summary(): HouseResult['rss'] {
    return {
      selfMedianMiB: median(this.#self) / MiB,
      selfMaxMiB: Math.max(...this.#self) / MiB,
      childrenMaxMiB: Math.max(...this.#children) / MiB,
      childrenMax: Math.max(...this.#count),
    };
  }
}

/** The commit camrelay was built from, and whether src/ had changes not in it. */
function treeLine(): string {
  const git = (args: string[]) => execFileSync('git', args, { cwd: import.meta.dirname, encoding: 'utf8' }).trim();
  try {
    return `commit ${git(['rev-parse', '--short', 'HEAD'])}${git(['status', '--porcelain', '--', '../src']) ? ' with uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown (no git)';
  }
}

const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

function report(ctx: BenchContext, s: { settleMs: number; windowMs: number }, r: HouseResult): string {
  const total = r.cpu.self + r.cpu.children;
  const fps = r.webrtc.map((v) => v.fps);
  const lost = r.webrtc.reduce((a, v) => a + v.lost, 0);
  const packets = r.webrtc.reduce((a, v) => a + v.packets, 0);
  const slow = r.webrtc.filter((v) => v.fps < r.clip.fps * FPS_SHARE || v.lost > 0);
  const snapOk = r.snapshots.filter((x) => x.status === 200);
  const snapMs = r.snapshots.map((x) => (x.status === 200 ? x.ms : Infinity)); // a failed snapshot counts as the slowest
  const p95 = percentile(snapMs, 95);
  const p = r.probe;
  const is1080 = r.clip.height === 1080;
  const rows: (string | number)[][] = [
    [
      `CPU, all camrelay's processes (% of one core) ≤ ${TARGET.cpuPercent}%${is1080 ? '' : ' (the target is for 1080p)'}`,
      `**${fmt(total)}%** = node ${fmt(r.cpu.self)}% + ffmpeg children ${fmt(r.cpu.children)}%; thirds of the window ${r.cpu.thirds.map((x) => fmt(x)).join(' / ')}%`,
      verdict(total <= TARGET.cpuPercent),
    ],
    [
      `every viewer at the camera's frame rate (${r.clip.fps} fps), no loss`,
      `${r.webrtc.length} WebRTC viewers: fps min ${fmt(Math.min(...fps), 2)}, median ${fmt(median(fps), 2)}; ${lost} packets lost of ${packets + lost}${slow.length ? `; short of ${fmt(r.clip.fps * FPS_SHARE, 1)} fps or with loss: ${slow.map((v) => `${v.src} ${fmt(v.fps, 1)} fps ${v.lost} lost`).join(', ')}` : ''}`,
      verdict(slow.length === 0 && r.webrtc.length === CAMERAS * VIEWERS_PER_CAMERA),
    ],
    [
      `snapshot latency p95 < ${TARGET.snapshotP95Ms} ms`,
      `p50 ${fmt(percentile(snapMs, 50), 0)} ms, **p95 ${fmt(p95, 0)} ms**, max ${fmt(Math.max(...snapOk.map((x) => x.ms)), 0)} ms (${r.snapshots.length} sent in the window, ${r.snapshots.length - snapOk.length} not 200)`,
      verdict(r.snapshots.length > 0 && p95 < TARGET.snapshotP95Ms),
    ],
    [
      `event-loop lag p99 < ${TARGET.lagP99Ms} ms`,
      `**${fmt(r.lagP99Ms)} ms** (camrelay's \`nodejs_eventloop_lag_p99_seconds\` over the window, less its ${EVENT_LOOP_SAMPLE_MS} ms sampling interval); GET /api from another process p50 ${fmt(r.api.p50)} ms, p99 ${fmt(r.api.p99)} ms (${r.api.n} GETs, ${r.api.failed} failed)`,
      r.lagP99Ms === undefined ? 'not measured' : verdict(r.lagP99Ms < TARGET.lagP99Ms),
    ],
  ];
  const perCam = cams().map((i) => {
    const src = `cam${i}`;
    const v = r.webrtc.filter((x) => x.src === src);
    const m = r.mse.find((x) => x.src === src);
    const sn = r.snapshots.filter((x) => x.cam === i);
    return [
      src,
      v.map((x) => fmt(x.fps, 2)).join(' / '),
      v.map((x) => x.lost).join(' / '),
      m ? fmt(m.mbit, 2) : '–',
      sn.map((x) => (x.status === 200 ? fmt(x.ms, 0) : `HTTP ${x.status || 'none'}`)).join(', '),
    ];
  });
  return [
    `## House: ${CAMERAS} cameras, ${CAMERAS * VIEWERS_PER_CAMERA} WebRTC viewers, ${MSE_CAMERAS.length} MSE viewers, a snapshot of every camera every ${SNAPSHOT_EVERY_MS / 1000} s`,
    '',
    machineLine(),
    `Command: \`${ctx.command}\`${ctx.command.includes('--only house') ? '' : ' (`--only house` for this section alone)'}. Tree measured: ${treeLine()}.`,
    '',
    `Cameras: one gst-rtsp-server process (test/helpers/gst-rtsp-server.py \`--pipeline h264-file --mounts ${CAMERAS}\`) serving ${CAMERAS} mounts of ${describeClip(r.clip)}, each mount its own pipeline, nothing encoded while the bench measures. ` +
      `Which clip: a probe first ran ${CAMERAS} cameras of ${p.clip.height}p (${describeClip(p.clip)}) with camrelay pulling each for one viewer, ${p.seconds} s: the camera process used ${fmt(p.cameraCpu)}% of a core and the slowest viewer got ${fmt(p.minFps, 2)} fps` +
      (p.saturated ? `, so 16 × ${p.clip.height}p saturates the camera process on this machine (≥ 90% of a core or a viewer below 95% of ${p.clip.fps} fps) and the house ran at ${r.clip.height}p.` : `, within what it serves, so the house ran at ${r.clip.height}p.`),
    `camrelay: the bundle with a stream per camera (\`rtsp://…/camN\`), its defaults (WebRTC backend: ${r.backend}; \`api.max_snapshots\` 4). ` +
      `Viewers: ${CAMERAS * VIEWERS_PER_CAMERA} node-datachannel peers (bench/ndc-viewer.ts) in a process of their own, joining over ${JOIN_MS / 1000} s (first one per camera, then the second, each camera starting on its first); ` +
      `${MSE_CAMERAS.length} MSE viewers (bench/mse-viewer-process.ts, \`/api/ws\`) on ${MSE_CAMERAS.map((i) => `cam${i}`).join(' and ')}; ` +
      `\`GET /api/frame.jpeg?src=camN\` of every camera every ${SNAPSHOT_EVERY_MS / 1000} s on a fixed schedule, the cameras spread evenly over the period (from the bench process, a fresh connection each, from the first join on); ` +
      `\`GET /api\` every ${SAMPLER_PAUSE_MS} ms from another process (bench/api-sampler.ts). After ${s.settleMs / 1000} s of settling, one steady window of ${fmt(r.seconds, 0)} s.`,
    `CPU is from /proc: camrelay's node process (all threads), and its children: the live ones plus those it reaped during the window (its cutime + cstime), so every snapshot ffmpeg that ran in the window counts, however short. RSS sampled every second. Frame rate and loss per viewer from its RTP (marker bits, sequence gaps).`,
    '',
    table(['target (issue 17)', 'measured', 'verdict'], rows),
    '',
    table(
      ['also measured', ''],
      [
        ['camrelay RSS (node process)', `median ${fmt(r.rss.selfMedianMiB)} MiB, max ${fmt(r.rss.selfMaxMiB)} MiB`],
        ...(r.parts
          ? [['camrelay RSS by part at the end (/proc/<pid>/smaps), MiB', `node executable ${fmt(r.parts.node / MiB)}, node-datachannel ${fmt(r.parts.addon / MiB)}, other libraries ${fmt(r.parts.libraries / MiB)}, malloc's main arena ${fmt(r.parts.mallocHeap / MiB)}, anonymous ${fmt(r.parts.anonymous / MiB)}; V8 heap ${fmt((r.heapTotal ?? NaN) / MiB)} committed, external memory ${fmt((r.external ?? NaN) / MiB)} (/metrics)`]]
          : []),
        ['camrelay children', `at most ${r.rss.childrenMax} at once, ${fmt(r.rss.childrenMaxMiB)} MiB RSS together at most`],
        ['MSE viewers', `${r.mse.map((m) => `${m.src} ${fmt(m.mbit, 2)} Mbit/s`).join(', ')}; ${r.mseOpen} of ${MSE_CAMERAS.length} open at the end`],
        ['snapshots per second, all cameras', fmt(r.snapshots.length / r.seconds, 2)],
        ['camera process / viewers\' process / MSE viewers\' process CPU', `${fmt(r.others.camera)}% / ${fmt(r.others.viewers)}% / ${fmt(r.others.mse)}%`],
        ['WebRTC connection attempts repeated (viewer side)', String(r.retries)],
      ],
    ),
    '',
    'Per camera: its two WebRTC viewers\' frame rate and packets lost, its MSE viewer, and the latency of each of its snapshots in the window.',
    '',
    table(['camera', 'WebRTC fps', 'lost', 'MSE Mbit/s', 'snapshots, ms'], perCam),
    '',
  ].join('\n');
}
