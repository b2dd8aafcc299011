// Issue 16's benchmark: what the automatic H.265 → H.264 transcode costs. A 1080p25 H.265
// camera (the pre-encoded clip of bench/transcode-clip.ts served by gst-rtsp-server, so the
// camera encodes nothing) watched by (a) one viewer offering H.265: pass-through, camrelay's CPU
// alone; (b) one H.264-only viewer: camrelay starts its shared `ffmpeg:cam#video=h264#hardware`
// (libx264 ultrafast where there is no GPU), whose CPU and RSS are read from /proc as camrelay's
// ffmpeg child; (c) two H.264-only viewers: still that one ffmpeg. Then how long the first
// H.264 viewer waits for its first keyframe while the transcode starts, beside a viewer joining
// a transcode already running.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { cameraCanRun, GstCamera } from '../test/helpers/gst-camera.js';
import { childrenNamed } from '../test/helpers/proc-children.js';
import { waitFor } from '../test/helpers/wait.js';
import { Camrelay } from './camrelay.js';
import { fmt, median, MiB, sleep, type BackendChoice, type BenchContext } from './context.js';
import { connectViewer, type NdcViewer } from './ndc-viewer.js';
import { cpuSeconds, rssBytes } from './proc.js';
import { machineLine, table } from './report.js';
import { describeH265Clip, ensureH265Clip } from './transcode-clip.js';
import { nullOutputArgs, runStartCheck, withoutNobuffer, type StartCheck } from './transcode-start-check.js';
import { H265Viewer } from './transcode-viewer.js';

interface Settings {
  /** Fresh camrelay per round; the tables give the median and the spread of the rounds. */
  rounds: number;
  warmupMs: number;
  windowMs: number;
  /** First-frame tries per round. */
  tries: number;
  /** Start checks (bench/transcode-start-check.ts) per round and variant, and how long each runs. */
  checks: number;
  checkMs: number;
}

/** One case's figures in one round. */
interface CaseRound {
  /** % of one core over the window. */
  camrelayCpu: number;
  /** The transcode ffmpeg's; NaN when none runs (pass-through). */
  ffmpegCpu: number;
  cameraCpu: number;
  camrelayRssMiB: number;
  ffmpegRssMiB: number;
  /** Frames per second and Mbit/s of RTP payload the slowest viewer received in the window. */
  fps: number;
  mbit: number;
  /** Transcode ffmpeg processes seen at the end of the window. */
  ffmpegs: number;
}

interface Round {
  passThrough: CaseRound;
  oneH264: CaseRound;
  twoH264: CaseRound;
  /** Offer → first keyframe of an H.264 viewer whose offer starts the transcode, ms. */
  starting: number[];
  /** The same for a second H.264 viewer joining while the transcode runs, ms. */
  joining: number[];
  /** For each `starting`: its offer's time after the camera's last keyframe reached the H.265 viewer, ms. */
  phases: number[];
  /** The transcode's command run again to `-f null`: as camrelay runs it, and without -fflags nobuffer. */
  asRun: StartCheck[];
  noNobuffer: StartCheck[];
  /** Whether camrelay's command has -fflags nobuffer at all. */
  hasNobuffer: boolean;
  /** What camrelay's startup hardware detection said. */
  hardware: string;
}

const STREAM = 'cam';

export async function runTranscode(ctx: BenchContext): Promise<string> {
  if (!cameraCanRun('h265-file')) throw new Error('GStreamer (appsrc, h265parse, rtph265pay) is missing: see test/helpers/gst-rtsp-server.py');
  const s: Settings = ctx.quick
    ? { rounds: 1, warmupMs: 3000, windowMs: 5000, tries: 3, checks: 1, checkMs: 4000 }
    : { rounds: 3, warmupMs: 5000, windowMs: 20000, tries: 5, checks: 2, checkMs: 4000 };
  const clip = ensureH265Clip(undefined, ctx.log);
  // The run's first backend (node-datachannel unless --backend says otherwise); the transcode's
  // own CPU does not depend on it.
  const backend = ctx.backends[0]!;
  const load = os.loadavg()[0]!;
  const camera = await GstCamera.start({ pipeline: 'h265-file', file: clip.file, fps: clip.fps });
  const rounds: Round[] = [];
  try {
    for (let r = 0; r < s.rounds; r++) {
      ctx.log(`transcode: round ${r + 1} of ${s.rounds} (${backend.label})`);
      const x = await oneRound(ctx, camera, backend, s, (clip.gop / clip.fps) * 1000);
      rounds.push(x);
      const line = (name: string, c: CaseRound) =>
        `  ${name}: camrelay ${fmt(c.camrelayCpu)}%, transcode ffmpeg ${fmt(c.ffmpegCpu)}% (${fmt(c.ffmpegRssMiB)} MiB), ${fmt(c.fps)} fps ${fmt(c.mbit, 2)} Mbit/s at the slowest viewer`;
      ctx.log(line('pass-through, 1 H.265 viewer', x.passThrough));
      ctx.log(line('transcode, 1 H.264 viewer', x.oneH264));
      ctx.log(line('transcode, 2 H.264 viewers', x.twoH264));
      ctx.log(`  first H.264 keyframe: transcode starting ${x.starting.map((v) => fmt(v, 0)).join(', ')} ms; joining it ${x.joining.map((v) => fmt(v, 0)).join(', ')} ms`);
    }
  } finally {
    await camera.stop();
  }
  return report(ctx, s, clip, backend, load, rounds);
}

async function oneRound(ctx: BenchContext, camera: GstCamera, backend: BackendChoice, s: Settings, cameraGopMs: number): Promise<Round> {
  const relay = await Camrelay.start({ streams: { [STREAM]: camera.url() }, backend: backend.backend });
  const ffmpegs = () => childrenNamed(relay.pid, ['ffmpeg']);
  const h264: NdcViewer[] = [];
  let holder: H265Viewer | undefined;
  try {
    // Hardware detection runs ffmpeg at startup: the counts below start after it.
    const hw = await relay.waitLog((l) => Array.isArray(l.hardware) || /^hardware detection failed/.test(l.msg), 60000);
    await waitFor('no ffmpeg child after hardware detection', () => ffmpegs().length === 0, 10000);

    // (a) Pass-through: one viewer that takes the camera's H.265.
    holder = new H265Viewer();
    await holder.connect(relay.base, STREAM);
    await waitFor('H.265 RTP at the H.265 viewer', () => holder!.received().frames > 0, 20000);
    const passThrough = await measure(relay, camera, s, () => [holder!.received()]);
    if (passThrough.ffmpegs !== 0) throw new Error(`an H.265 viewer alone: ${passThrough.ffmpegs} ffmpeg children (no transcode expected)`);

    // First frames, the stream live (the H.265 viewer holds it): each try starts from no
    // transcode, joins at a random point of the camera's GOP, and a second viewer joins after.
    const starting: number[] = [];
    const joining: number[] = [];
    /** Where in the camera's GOP each starting offer fell: ms after its last keyframe arrived. */
    const phases: number[] = [];
    for (let i = 0; i < s.tries; i++) {
      await waitFor('the previous try\'s transcode to exit', () => ffmpegs().length === 0, 10000);
      await sleep(Math.random() * cameraGopMs);
      const logFrom = relay.logs.length;
      const pair: NdcViewer[] = [];
      try {
        const first = (await connectViewer(`start${i}`, relay.base, STREAM)).viewer;
        pair.push(first);
        const took = (await first.firstKeyframe(20000)) - first.times.offerSent!;
        starting.push(took);
        const key = holder.keyframeBefore(first.times.offerSent!);
        const phase = key === undefined ? NaN : first.times.offerSent! - key;
        phases.push(phase);
        ctx.log(`  try ${i + 1}: offer ${fmt(phase, 0)} ms after the camera's last keyframe: first H.264 keyframe after ${fmt(took, 0)} ms`);
        // A random point of the transcode's 1 s GOP.
        await sleep(Math.random() * 1000);
        const second = (await connectViewer(`join${i}`, relay.base, STREAM)).viewer;
        pair.push(second);
        joining.push((await second.firstKeyframe(10000)) - second.times.offerSent!);
        if (ffmpegs().length !== 1) throw new Error(`two H.264 viewers: ${ffmpegs().length} ffmpeg children (one shared transcode expected)`);
      } catch (e) {
        throw new Error(`first-frame try ${i + 1}: ${String(e)}; ${relay.problemsSince(logFrom)}`);
      } finally {
        for (const v of pair) await v.close(relay.base);
      }
    }
    await holder.close();
    holder = undefined;

    // (b) One H.264-only viewer: the transcode runs for it.
    await waitFor('the last try\'s transcode to exit', () => ffmpegs().length === 0, 10000);
    h264.push((await connectViewer('h264-a', relay.base, STREAM)).viewer);
    await h264[0]!.firstKeyframe(20000);
    const [pid] = await waitFor('one transcode ffmpeg', () => (ffmpegs().length === 1 ? ffmpegs() : undefined), 5000);
    const cmd = nullOutputArgs(pid!);
    if (!cmd) throw new Error(`the transcode's command line has no RTSP output: ${readableCmdline(pid!)}`);
    const oneH264 = await measure(relay, camera, s, () => h264.map(ndcReceived), pid);
    if (oneH264.ffmpegs !== 1) throw new Error(`one H.264 viewer: ${oneH264.ffmpegs} ffmpeg children`);

    // (c) A second H.264-only viewer shares it.
    h264.push((await connectViewer('h264-b', relay.base, STREAM)).viewer);
    await h264[1]!.firstKeyframe(10000);
    const twoH264 = await measure(relay, camera, s, () => h264.map(ndcReceived), pid);
    if (twoH264.ffmpegs !== 1 || ffmpegs()[0] !== pid) throw new Error(`two H.264 viewers: ffmpeg children ${ffmpegs().join(', ')} (the one transcode, pid ${pid}, expected)`);

    // After the windows, so that the checks' CPU is in none of them; the transcode still runs.
    const asRun: StartCheck[] = [];
    const noNobuffer: StartCheck[] = [];
    for (let i = 0; i < s.checks; i++) {
      for (const [out, c] of [[asRun, cmd], [noNobuffer, withoutNobuffer(cmd)]] as const) {
        await sleep(Math.random() * cameraGopMs);
        out.push(await runStartCheck(c, s.checkMs));
      }
    }
    const hasNobuffer = cmd.args.join(' ').includes('-fflags nobuffer');
    ctx.log(`  start checks: as camrelay runs it ${asRun.map((c) => c.missingRefs).join(', ')} missing-reference errors; without -fflags nobuffer ${noNobuffer.map((c) => c.missingRefs).join(', ')}`);
    return { passThrough, oneH264, twoH264, starting, joining, phases, asRun, noNobuffer, hasNobuffer, hardware: hw.msg };
  } catch (e) {
    throw new Error(`${String(e)}; ${relay.problemsSince(0)}`);
  } finally {
    for (const v of h264) await v.close(relay.base);
    await holder?.close();
    await relay.stop();
  }
}

function readableCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '(gone)';
  }
}

interface Counted {
  at: number;
  bytes: number;
  frames: number;
}

function ndcReceived(v: NdcViewer): Counted {
  return { at: performance.now(), bytes: v.bytes, frames: v.frames };
}

/** After the warm-up, one window: CPU of camrelay, of its transcode (pid) and of the camera; what each viewer got. */
async function measure(relay: Camrelay, camera: GstCamera, s: Settings, viewers: () => Counted[], ffmpegPid?: number): Promise<CaseRound> {
  await sleep(s.warmupMs);
  const pids = { relay: relay.pid, ffmpeg: ffmpegPid, camera: camera.pid };
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, p === undefined ? undefined : cpuSeconds(p)]));
  const t0 = performance.now();
  const v0 = viewers();
  await sleep(s.windowMs);
  const v1 = viewers();
  const secs = (performance.now() - t0) / 1000;
  const pct = (k: keyof typeof pids) => {
    const p = pids[k];
    const a = cpu0[k];
    const b = p === undefined ? undefined : cpuSeconds(p);
    // A process gone during the window would read as a little CPU: say it is missing instead.
    return a === undefined || b === undefined ? NaN : (100 * (b - a)) / secs;
  };
  const rates = v1.map((z, i) => {
    const a = v0[i]!;
    const dt = (z.at - a.at) / 1000;
    return { fps: (z.frames - a.frames) / dt, mbit: ((z.bytes - a.bytes) * 8) / dt / 1e6 };
  });
  return {
    camrelayCpu: pct('relay'),
    ffmpegCpu: pct('ffmpeg'),
    cameraCpu: pct('camera'),
    camrelayRssMiB: (rssBytes(relay.pid) ?? NaN) / MiB,
    ffmpegRssMiB: ffmpegPid === undefined ? NaN : (rssBytes(ffmpegPid) ?? NaN) / MiB,
    fps: Math.min(...rates.map((r) => r.fps)),
    mbit: Math.min(...rates.map((r) => r.mbit)),
    ffmpegs: childrenNamed(relay.pid, ['ffmpeg']).length,
  };
}

/** Median of the rounds, with their range when there is more than one. */
function spread(xs: number[], digits = 1): string {
  const ok = xs.filter(Number.isFinite);
  if (ok.length === 0) return '–';
  const m = fmt(median(ok), digits);
  return ok.length > 1 ? `${m} (${fmt(Math.min(...ok), digits)}–${fmt(Math.max(...ok), digits)})` : m;
}

function report(ctx: BenchContext, s: Settings, clip: ReturnType<typeof ensureH265Clip>, backend: BackendChoice, load: number, rounds: Round[]): string {
  const cases: [string, string, (r: Round) => CaseRound][] = [
    ['pass-through', '1 offering H.265', (r) => r.passThrough],
    ['transcode to H.264', '1 H.264-only', (r) => r.oneH264],
    ['transcode to H.264', '2 H.264-only', (r) => r.twoH264],
  ];
  const col = (pick: (r: Round) => CaseRound, f: (c: CaseRound) => number, digits = 1) => spread(rounds.map((r) => f(pick(r))), digits);
  const total = (c: CaseRound) => c.camrelayCpu + (Number.isFinite(c.ffmpegCpu) ? c.ffmpegCpu : 0);
  const starting = rounds.flatMap((r) => r.starting);
  const phases = rounds.flatMap((r) => r.phases);
  const halfGop = (500 * clip.gop) / clip.fps;
  const early = starting.filter((_, i) => phases[i]! < halfGop);
  const late = starting.filter((_, i) => phases[i]! >= halfGop);
  const joining = rounds.flatMap((r) => r.joining);
  const ms = (xs: number[]) => [fmt(median(xs), 0), fmt(Math.min(...xs), 0), fmt(Math.max(...xs), 0)];
  const tries = (xs: number[]) => `${xs.length} tr${xs.length === 1 ? 'y' : 'ies'}`;
  const pass = median(rounds.map((r) => r.passThrough.camrelayCpu));
  const one = median(rounds.map((r) => total(r.oneH264)));
  const ffmpegOne = median(rounds.map((r) => r.oneH264.ffmpegCpu));
  const mbitOne = median(rounds.map((r) => r.oneH264.mbit));
  const hardware = [...new Set(rounds.map((r) => r.hardware))].join('; ');
  const spreadNote = rounds.length > 1 ? `median of ${rounds.length} rounds (each a fresh camrelay), their range in brackets` : 'one round';
  return [
    '## H.265 camera: pass-through and the automatic H.264 transcode',
    '',
    machineLine(),
    `Command: \`${ctx.command}\` (1-minute load average ${load.toFixed(2)} when it started). Camera: ${describeH265Clip(clip)}, pre-encoded once (\`${clip.command}\`) and served by gst-rtsp-server (\`h265-file\`: no encoding in the camera), RTSP/TCP. ` +
      `camrelay is the bundle (bench/camrelay.ts) with its defaults (\`transcode: auto\`), WebRTC backend ${backend.label}; its hardware detection said: "${hardware}". ` +
      'An H.264-only viewer makes camrelay start one shared `ffmpeg:cam#video=h264#hardware`, which reads the stream back from camrelay\'s RTSP server and publishes H.264 to it: here libx264 `-preset ultrafast -tune zerolatency -profile baseline`, a keyframe every second, no bitrate cap (src/sources/ffmpeg-args.ts). ' +
      'The H.265 viewer is a werift peer offering only H265 (test/helpers/werift-viewer.ts), the H.264 viewers node-datachannel peers offering only H.264 (bench/ndc-viewer.ts), all in the bench process (their CPU is in no figure). ' +
      `CPU is utime+stime from /proc over a ${s.windowMs / 1000} s window after ${s.warmupMs / 1000} s of playing, in % of one core, for camrelay, for its ffmpeg child (the transcode, found in /proc as camrelay's child) and for the camera; RSS at the end of the window; ${spreadNote}.`,
    '',
    table(
      ['case', 'viewers', 'camrelay CPU', 'transcode ffmpeg CPU', 'camrelay + ffmpeg', 'camrelay RSS MiB', 'ffmpeg RSS MiB', 'slowest viewer fps', 'slowest viewer Mbit/s', 'camera CPU'],
      cases.map(([name, viewers, pick]) => [
        name,
        viewers,
        col(pick, (c) => c.camrelayCpu),
        col(pick, (c) => c.ffmpegCpu),
        col(pick, total),
        col(pick, (c) => c.camrelayRssMiB),
        col(pick, (c) => c.ffmpegRssMiB),
        col(pick, (c) => c.fps),
        col(pick, (c) => c.mbit, 2),
        col(pick, (c) => c.cameraCpu),
      ]),
    ),
    '',
    table(
      [`offer → first H.264 keyframe (${starting.length} tries)`, 'median ms', 'min', 'max'],
      [
        ['first H.264 viewer: the transcode starts (the stream already live for an H.265 viewer)', ...ms(starting)],
        [`… its offer less than ${fmt(halfGop / 1000)} s after a camera keyframe (${tries(early)})`, ...ms(early)],
        [`… its offer ${fmt(halfGop / 1000)} s or more after a camera keyframe (${tries(late)})`, ...ms(late)],
        ['second H.264 viewer: joins the running transcode', ...ms(joining)],
      ],
    ),
    '',
    `- The fallback costs ${fmt(one - pass)} % of a core more than pass-through for this camera (${fmt(one)} against ${fmt(pass)}), ${fmt(ffmpegOne)} of it the ffmpeg child: decoding 1080p H.265 and encoding 1080p H.264. A second H.264 viewer adds only camrelay's per-viewer work: the transcode is shared.`,
    `- What the H.264 viewers receive is the transcode's output, not the camera's bitrate: ${fmt(mbitOne, 2)} Mbit/s against the camera's ${fmt(clip.actualBitrate / 1e6, 2)} here, since libx264 ultrafast runs at its default quality with no bitrate cap (on this noisy picture; a quieter scene needs less).`,
    `- First frame: each try starts with no transcode running and the offer at a random point of the camera's ${clip.gop / clip.fps} s GOP; the time includes ffmpeg starting, reading the stream back over RTSP and encoding its first IDR. camrelay's RTSP output gives a new reader the current GOP from its keyframe at once (src/outputs/rtsp.ts), so the transcode does not wait for the camera's next keyframe; the split by where the offer fell in the camera's GOP (the time since the H.265 viewer last received a keyframe) shows how much of the wait is ffmpeg reading the start of the stream before it encodes: an offer late in the GOP finds more of it already there. The joiner is timed the same way, at a random point of the transcode's 1 s GOP.`,
    startCheckLine(rounds, s),
    '- With a GPU, `#hardware` moves the encode (and where it can, the decode) to it; this machine has none, so these are the software figures.',
  ].join('\n');
}

function startCheckLine(rounds: Round[], s: Settings): string {
  const asRun = rounds.flatMap((r) => r.asRun);
  const without = rounds.flatMap((r) => r.noNobuffer);
  const damaged = (cs: StartCheck[]) => cs.filter((c) => c.missingRefs > 0).length;
  const first = asRun.find((c) => c.missingRefs > 0)?.first;
  const what = rounds.every((r) => r.hasNobuffer)
    ? `; the same command without \`-fflags nobuffer\` (which drops the packets ffmpeg reads while it probes its input, here the first frames of the GOP camrelay gives it): ${damaged(without)} of ${without.length}`
    : ' (camrelay\'s command has no `-fflags nobuffer`)';
  const n = damaged(asRun);
  const verdict =
    n > 0
      ? `${n} of ${asRun.length} starts logged reference pictures missing (\`${first?.trim() ?? ''}\`): the decoder starts on frames whose references it never got, so its pictures are damaged until the camera's next keyframe, the first H.264 keyframe timed above among them`
      : `none of ${asRun.length} starts logged a missing reference picture`;
  return `- Does the transcode start on a whole picture? The bench ran the transcode's own command (from /proc) again from a fresh start, its output to \`-f null\`, for ${s.checkMs / 1000} s at a time: ${verdict}${what}.`;
}
