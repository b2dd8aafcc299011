// The soak: camrelay as a real child process, driven through many WebRTC and RTSP viewer cycles
// with real peers, its resources read at checkpoints and compared with a baseline.
import path from 'node:path';
import { CamrelayProcess } from '../../test/helpers/camrelay-process.js';
import { ensureBundle, startEnv, startFlags } from '../bundle.js';
import { waitFor } from '../../test/helpers/wait.js';
import { soakConfig } from './config.js';
import { cpuWindow, cpuTicks, CLK_TCK, memory } from './proc.js';
import { withoutOwnGcs, type IdleWindow } from './idle-window.js';
import { webrtcCycle, WEBRTC_KINDS, type Deadlines, type WebRtcKind } from './webrtc-cycles.js';
import { rtspCycle, RTSP_KINDS } from './rtsp-cycles.js';
import { mseCycle, MSE_ROUND, type MseCycle } from './mse-cycles.js';
import { hlsCycle, hlsSessionsEnded, HLS_BATCH, HLS_TIMEOUT_MS } from './hls-cycles.js';
import { diffCounts, liveFfmpeg, snapshot, type Snapshot } from './snapshot.js';
import { evaluate } from './criteria.js';
import { Tally } from './tally.js';
import { DEFAULTS, type SoakOptions } from './options.js';
import type { Row, SoakResult } from './result.js';

export { DEFAULTS, type SoakOptions, type Row, type SoakResult };

/** Each kind's close reasons that count as the right ending. */
const EXPECTED: Record<WebRtcKind, readonly string[]> = {
  clean: ['closed by client'],
  vanished: ['disconnect timeout'],
  'no-ice': ['connect timeout'],
  'ws-drop': ['viewer left before the answer'],
};

export const MEDIA_KINDS: ReadonlySet<string> = new Set(['clean', 'vanished', 'rtsp:teardown', 'rtsp:close']);

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

const GC_HOOK = path.resolve(import.meta.dirname, 'gc-hook.cjs');

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const yaml = soakConfig({ connectTimeout: o.connectTimeout, disconnectTimeout: o.disconnectTimeout, backend: o.backend });
  const env = { ...startEnv(), ...(o.gc ? { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require "${GC_HOOK}"`].filter(Boolean).join(' ') } : {}) };
  const app = await CamrelayProcess.start(yaml, { env, bundle: ensureBundle(), nodeFlags: startFlags() });
  try {
    return await new Soak(app, o).run();
  } finally {
    await app.stop();
  }
}

class Soak {
  readonly #tally = new Tally();
  /** MSE and HLS cycles, kept apart from the WebRTC and RTSP kinds. */
  readonly #outputs = new Tally();
  readonly #firstFragment: Record<string, number[]> = {};
  readonly #tails = new Set<Promise<void>>();
  readonly #rows: Row[] = [];
  readonly #deadlines: Deadlines;
  readonly #say: (s: string) => void;
  #baseline!: Snapshot;
  #logsAtBaseline = 0;
  #t0 = performance.now();
  #segment = { ticks: 0, at: 0, rssMin: Infinity, rssMax: 0 };

  constructor(
    private readonly app: CamrelayProcess,
    private readonly o: SoakOptions,
  ) {
    // Media within 8 s (a cold start plus a keyframe on a loaded machine); an end within the
    // longer timeout plus 8 s.
    this.#deadlines = { mediaMs: 8000, endMs: Math.max(seconds(o.connectTimeout), seconds(o.disconnectTimeout)) * 1000 + 8000 };
    this.#say = o.progress ?? (() => undefined);
  }

  async run(): Promise<SoakResult> {
    const { app, o } = this;
    const warmupAdded = await this.#takeBaseline();
    this.#t0 = performance.now();
    this.#newSegment();
    const sampler = setInterval(() => this.#sampleRss(), 250);
    let idle: IdleWindow = { share: NaN, slices: [], leftOut: [] };
    let rssAtRest = NaN;
    let stoppedEarly = false;
    try {
      const n = Math.max(o.webrtc, o.rtsp);
      let done = 0;
      for (const mark of checkpoints(n, o.reference, o.every)) {
        // One cycle of each kind in turn, so every segment between two rows has both.
        for (; done < mark && this.#tally.failed <= o.maxFailures; done++) {
          if (done < o.webrtc) await this.#webrtc(done);
          if (done < o.rtsp) await this.#rtsp(done);
        }
        stoppedEarly = this.#tally.failed > o.maxFailures;
        if (stoppedEarly) this.#say(`stopping: ${this.#tally.failed} failed cycles`);
        // Every cycle's end has been seen: the last viewer of the segment has left.
        await Promise.all([...this.#tails]);
        const end = { rss: memory(app.pid).rss, cpu: this.#segmentCpu(), rssMin: this.#segment.rssMin, rssMax: this.#segment.rssMax };
        const last = mark === n || stoppedEarly;
        // Every row, not only the last, gets the same idle window before it is read, so that the
        // figures read after it (RSS after GC above all) are read in the same state each time.
        // Only /proc is read during the window, so it measures camrelay alone.
        idle = await this.#idleWindow();
        const s = await this.#checkpoint(Math.min(done, o.webrtc), Math.min(done, o.rtsp), end, idle.share);
        if (last) {
          rssAtRest = s.rss;
          break;
        }
      }
      // Each output kind after the WebRTC and RTSP cycles, each followed by a row read the same
      // way (idle window, back to baseline, GC), so each kind is judged back at baseline on its own.
      const w = this.#rows.at(-1)?.webrtc ?? 0;
      const r = this.#rows.at(-1)?.rtsp ?? 0;
      for (const [kind, cycles, drive] of [
        ['mse', o.mse, () => this.#msePhase()],
        ['hls', o.hls, () => this.#hlsPhase()],
      ] as const) {
        if (cycles === 0 || stoppedEarly) continue;
        this.#newSegment();
        await drive();
        stoppedEarly = this.#tally.failed + this.#outputs.failed > o.maxFailures;
        const end = { rss: memory(app.pid).rss, cpu: this.#segmentCpu(), rssMin: this.#segment.rssMin, rssMax: this.#segment.rssMax };
        idle = await this.#idleWindow();
        const s = await this.#checkpoint(w, r, end, idle.share, { kind, cycles });
        rssAtRest = s.rss;
      }
    } finally {
      clearInterval(sampler);
    }
    const t = this.#tally;
    const childPids = app.logs.filter((l) => l.msg === 'child started' && typeof l.pid === 'number').map((l) => l.pid as number);
    const result: Omit<SoakResult, 'criteria' | 'pass'> = {
      options: o,
      baseline: this.#baseline,
      warmupAdded,
      webrtcBackend: String(app.logs.find((l) => l.msg === 'webrtc backend')?.backend ?? 'unknown'),
      rows: this.#rows,
      rssAtRest,
      idleCpu: idle.share,
      idleCpuSlices: idle.slices,
      idleCpuLeftOut: idle.leftOut,
      failures: [...t.failures, ...this.#outputs.failures],
      kinds: t.kinds,
      outputKinds: this.#outputs.kinds,
      mseFirstFragment: Object.fromEntries(Object.entries(this.#firstFragment).map(([k, v]) => [k, { p50: quantile(v, 0.5), p95: quantile(v, 0.95) }])),
      webrtcReasons: t.webrtcReasons,
      rtspReasons: t.rtspReasons,
      wsDrop: t.wsDrop,
      leftoverFfmpeg: liveFfmpeg(childPids),
      durationS: (performance.now() - this.#t0) / 1000,
      stoppedEarly,
    };
    const criteria = evaluate(result, { failed: t.failed, expectedWebrtc: o.webrtc, expectedRtsp: o.rtsp, mediaKinds: MEDIA_KINDS, outputsFailed: this.#outputs.failed });
    return { ...result, criteria, pass: criteria.every((c) => c.pass) };
  }

  /** The baseline, after the warm-up if there is one; returns what the warm-up added. */
  async #takeBaseline(): Promise<string | undefined> {
    const start = await snapshot(this.app);
    this.#baseline = start;
    if (!this.o.warmup) return undefined;
    await (await webrtcCycle(this.app, -1, 'clean', this.#deadlines)).tail;
    await rtspCycle(this.app, 'teardown', this.#deadlines);
    await waitFor('idle after the warm-up', async () => {
      this.#baseline = await snapshot(this.app);
      const b = this.#baseline;
      // Sockets as at startup, counted both ways (a connection of the warm-up may still be closing).
      return b.children === 0 && same(b.objects, start.objects) && same(b.sockets, start.sockets) && b.fdKinds.socket === start.fdKinds.socket;
    }, 10_000, 50);
    this.#logsAtBaseline = this.app.logs.length;
    const b = this.#baseline;
    return [diffCounts(b.fdKinds, start.fdKinds), b.threads !== start.threads ? `${b.threads - start.threads} threads` : ''].filter(Boolean).join(', ');
  }

  async #webrtc(i: number): Promise<void> {
    const kind = WEBRTC_KINDS[i % WEBRTC_KINDS.length]!;
    const t = this.#tally;
    t.kind(kind).cycles++;
    while (this.#tails.size >= this.o.maxTails) await Promise.race(this.#tails);
    if (kind === 'ws-drop') {
      // See wsDrop(): the offer must find the stream idle to be dropped while camrelay answers it.
      await Promise.all([...this.#tails]);
      await waitFor('stream idle before a dropped offer', () => streamState(this.app) === 'idle', this.#deadlines.endMs, 10).catch((e: unknown) => t.fail(`webrtc ${kind} #${i} (precondition)`, e));
    }
    let tail;
    try {
      const c = await webrtcCycle(this.app, i, kind, this.#deadlines);
      t.media(kind, c.videoPackets);
      if (MEDIA_KINDS.has(kind) && c.videoPackets === 0) throw new Error('no video received');
      tail = c.tail;
    } catch (e) {
      t.fail(`webrtc ${kind} #${i}`, e);
      return;
    }
    const p: Promise<void> = tail
      .then((end) => {
        for (const r of end.reasons) t.reason(t.webrtcReasons, r);
        if (end.abortedBeforeAnswer === true) t.wsDrop.abortedBeforeAnswer++;
        if (end.abortedBeforeAnswer === false) t.wsDrop.answeredFirst++;
        const wrong = end.reasons.filter((r) => !EXPECTED[kind].includes(r));
        if (wrong.length > 0) throw new Error(`ended by ${wrong.join(', ')}, expected ${EXPECTED[kind].join(' or ')}`);
        t.kind(kind).ok++;
      })
      .catch((e: unknown) => t.fail(`webrtc ${kind} #${i} (server side)`, e))
      .finally(() => this.#tails.delete(p));
    this.#tails.add(p);
  }

  async #rtsp(i: number): Promise<void> {
    const kind = RTSP_KINDS[i % RTSP_KINDS.length]!;
    const k = `rtsp:${kind}`;
    const t = this.#tally;
    t.kind(k).cycles++;
    try {
      const r = await rtspCycle(this.app, kind, this.#deadlines);
      t.media(k, r.videoPackets);
      t.reason(t.rtspReasons, r.reason);
      t.kind(k).ok++;
    } catch (e) {
      t.fail(`rtsp ${kind} #${i}`, e);
    }
  }

  /**
   * The MSE cycles in rounds of MSE_ROUND: the first of a round finds the stream idle and holds it
   * until the round's other cycles have come and gone (see mse-cycles.ts). Every cycle's socket is
   * seen ended by camrelay before the next starts.
   */
  async #msePhase(): Promise<void> {
    const t = this.#outputs;
    for (let i = 0; i < this.o.mse && t.failed <= this.o.maxFailures; i += MSE_ROUND) {
      await waitFor('stream idle before an MSE round', () => streamState(this.app) === 'idle', this.#deadlines.endMs, 10).catch((e: unknown) => t.fail(`mse round ${i} (precondition)`, e));
      const holder = await this.#mse(i, 'cold');
      for (let j = i + 1; j < Math.min(i + MSE_ROUND, this.o.mse) && t.failed <= this.o.maxFailures; j++) {
        const c = await this.#mse(j, 'warm');
        if (c) await this.#mseLeave(c, j, 'warm');
      }
      if (holder) await this.#mseLeave(holder, i, 'cold');
    }
  }

  async #mse(i: number, kind: 'cold' | 'warm'): Promise<MseCycle | undefined> {
    const k = `mse:${kind}`;
    const t = this.#outputs;
    t.kind(k).cycles++;
    try {
      const c = await mseCycle(this.app, i, this.#deadlines);
      t.media(k, c.viewer.binary.length - 1);
      (this.#firstFragment[k] ??= []).push(c.viewer.firstFragmentMs!);
      return c;
    } catch (e) {
      t.fail(`mse ${kind} #${i}`, e);
      return undefined;
    }
  }

  async #mseLeave(c: MseCycle, i: number, kind: 'cold' | 'warm'): Promise<void> {
    c.viewer.close();
    try {
      await c.ended(this.#deadlines.endMs);
      this.#outputs.kind(`mse:${kind}`).ok++;
    } catch (e) {
      this.#outputs.fail(`mse ${kind} #${i} (server side)`, e);
    }
  }

  /**
   * The HLS cycles in batches of HLS_BATCH at once: each session fetches its playlists, init and a
   * segment, then nothing, and the batch ends when camrelay has timed every session out. A batch
   * is bounded by the media deadline for its fetches plus the session timeout and the end deadline.
   */
  async #hlsPhase(): Promise<void> {
    const t = this.#outputs;
    for (let i = 0; i < this.o.hls && t.failed <= this.o.maxFailures; i += HLS_BATCH) {
      const n = Math.min(HLS_BATCH, this.o.hls - i);
      const ran = await Promise.all(Array.from({ length: n }, async (_, j) => {
        t.kind('hls').cycles++;
        try {
          const r = await hlsCycle(this.app, this.#deadlines);
          t.media('hls', r.segmentLength > 0 ? 1 : 0);
          return true;
        } catch (e) {
          t.fail(`hls #${i + j}`, e);
          return false;
        }
      }));
      try {
        await hlsSessionsEnded(this.app, HLS_TIMEOUT_MS + this.#deadlines.endMs);
        // The last session's end releases the stream: its ffmpeg stopping belongs to the batch,
        // not to the idle window after the last one.
        await waitFor('stream idle after an HLS batch', () => streamState(this.app) === 'idle', this.#deadlines.endMs, 10);
        t.kind('hls').ok += ran.filter(Boolean).length;
      } catch (e) {
        t.fail(`hls batch ${i} (server side)`, e);
      }
    }
  }

  /** Waits until camrelay holds only what it held at the baseline (or `ms` passes); returns what it saw last. */
  async #settle(ms: number): Promise<Snapshot> {
    const b = this.#baseline;
    let s = await snapshot(this.app);
    await waitFor('back to baseline', async () => {
      s = await snapshot(this.app);
      return s.children === 0 && same(s.objects, b.objects) && same(s.sockets, b.sockets) && s.fds === b.fds;
    }, ms, 50).catch(() => undefined);
    return s;
  }

  async #checkpoint(w: number, r: number, end: { rss: number; cpu: number; rssMin: number; rssMax: number }, idleCpu: number, phase?: Row['phase']): Promise<Snapshot> {
    const { rss: rssEnd, cpu, rssMin, rssMax } = end;
    const s = await this.#settle(10_000);
    const gc = this.o.gc ? await this.#collect() : undefined;
    const b = this.#baseline;
    const objDiff = diffCounts(s.objects, b.objects);
    const row: Row = {
      webrtc: w,
      rtsp: r,
      ...(phase && { phase }),
      elapsedS: (performance.now() - this.#t0) / 1000,
      rss: rssEnd,
      rssMin: Math.min(rssMin, rssEnd),
      rssMax: Math.max(rssMax, rssEnd),
      ...gc,
      peak: s.peak,
      fds: s.fds,
      threads: s.threads,
      children: s.children,
      tcp: s.sockets.tcp,
      udp: s.sockets.udp,
      otherSockets: s.sockets.other,
      objects: objDiff === '' ? '= baseline' : objDiff,
      fdDiff: diffCounts(s.fdKinds, b.fdKinds),
      sourceStarts: this.app.logs.slice(this.#logsAtBaseline).filter((l) => l.msg === 'source starting').length,
      cpu,
      idleCpu,
      failures: this.#tally.failed + this.#outputs.failed,
    };
    this.#rows.push(row);
    this.#say(
      `${w} WebRTC + ${r} RTSP cycles${phase ? `, then ${phase.cycles} ${phase.kind.toUpperCase()}` : ''}, ${row.elapsedS.toFixed(0)} s: RSS ${mb(row.rss)} MB (${mb(row.rssMin)}-${mb(row.rssMax)}, peak ${mb(row.peak)}` +
        `${gc ? `, after GC ${mb(gc.rssGc)}, net ${mb(gc.rssNet)}, JS heap live ${mb(gc.heapLive)} of ${mb(gc.heapTotal)}, external ${mb(gc.external)}` : ''}), ` +
        `fds ${row.fds}${row.fdDiff ? ` (${row.fdDiff})` : ''}, threads ${row.threads}, children ${row.children}, tcp ${row.tcp}, udp ${row.udp}, ` +
        `objects ${row.objects}, ffmpeg starts ${row.sourceStarts}, CPU ${(cpu * 100).toFixed(1)} % (then idle ${(idleCpu * 100).toFixed(1)} %), failures ${row.failures}`,
    );
    this.#newSegment();
    return s;
  }

  /** camrelay's CPU in the idle window, without the seconds of V8's own major GCs (idle-window.ts). */
  async #idleWindow(): Promise<IdleWindow> {
    const from = this.app.logs.length;
    const w = await cpuWindow(this.app.pid, this.o.idleCpuMs);
    const gcs = this.app.logs.slice(from).filter((l) => l.msg === 'soak v8 gc').map((l) => ({ at: Number(l.at), ms: Number(l.ms) }));
    return withoutOwnGcs(w, gcs);
  }

  /** A full GC in camrelay (see gc-hook.cjs), then its live heap and RSS. */
  async #collect(): Promise<{ rssGc: number; rssNet: number; heapLive: number; heapTotal: number; external: number }> {
    const from = this.app.logs.length;
    process.kill(this.app.pid, 'SIGUSR2');
    const l = await this.app.waitLog((x) => x.msg === 'soak gc', 10_000, from);
    const rssGc = memory(this.app.pid).rss;
    const heapLive = Number(l.heapUsed);
    const heapTotal = Number(l.heapTotal);
    return { rssGc, rssNet: rssGc - (heapTotal - heapLive), heapLive, heapTotal, external: Number(l.external) };
  }

  #newSegment(): void {
    this.#segment = { ticks: cpuTicks(this.app.pid), at: performance.now(), rssMin: Infinity, rssMax: 0 };
  }

  #segmentCpu(): number {
    return (cpuTicks(this.app.pid) - this.#segment.ticks) / CLK_TCK / ((performance.now() - this.#segment.at) / 1000);
  }

  #sampleRss(): void {
    try {
      const { rss } = memory(this.app.pid);
      this.#segment.rssMin = Math.min(this.#segment.rssMin, rss);
      this.#segment.rssMax = Math.max(this.#segment.rssMax, rss);
    } catch {
      // camrelay exited: the cycles fail and say so.
    }
  }
}

/** The demo stream's state, from the last 'stream state' line camrelay logged. */
function streamState(app: CamrelayProcess): string {
  for (let i = app.logs.length - 1; i >= 0; i--) {
    const l = app.logs[i]!;
    if (l.msg === 'stream state' && l.stream === 'demo') return String(l.state);
  }
  return 'idle';
}

/** Row marks: the reference, then every `every`, then the end. */
export function checkpoints(n: number, reference: number, every: number): number[] {
  const marks = new Set<number>();
  if (reference > 0 && reference < n) marks.add(reference);
  for (let m = every; m < n; m += every) if (m > reference) marks.add(m);
  marks.add(n);
  return [...marks].sort((a, b) => a - b);
}

function seconds(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(s.trim());
  if (!m) throw new Error(`not a duration in s or ms: ${s}`);
  return m[2] === 'ms' ? Number(m[1]) / 1000 : Number(m[1]);
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * q))]! : NaN;
}

export const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
