// What hardware encoding this machine has, found once at startup: cheap checks first (the device
// nodes each engine needs, the encoders this ffmpeg was built with), then for every candidate a
// one-frame test encode with exactly the device, filters and encoder options a transcode would
// get (engines.ts). Only an engine whose test encode succeeded is ever used.
import { readdir, readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../core/errors.js';
import { log } from '../../core/log.js';
import { ChildProcessOwner, type StopGrace } from '../../process/child.js';
import { ENCODERS, ENGINES, testEncodeArgs, type Engine, type EngineUse, type HardwareCodec } from './engines.js';

/** One engine and codec as detection left it. */
export interface EngineTest {
  engine: Engine;
  codec: HardwareCodec;
  ok: boolean;
  /** The device it works on (or the last one tried). */
  device?: string;
  /** 'OK', or why not: no device, not in this ffmpeg, the test encode's last stderr line. */
  info: string;
}

export interface HardwareReport {
  /** Every engine and codec, in ENGINES order. */
  tests: EngineTest[];
  /** What `#hardware` picks per codec; undefined = software. */
  pick: Partial<Record<HardwareCodec, EngineUse>>;
}

export interface DetectOptions {
  bin: string;
  grace: StopGrace;
  /** Aborting stops the child that runs and ends detection with what was found so far. */
  signal?: AbortSignal;
  /** Per child (ffmpeg -encoders, each test encode); default 10 s. */
  timeoutMs?: number;
  /** Where device nodes and sysfs are (tests point them at a fixture); default /dev and /sys. */
  devRoot?: string;
  sysRoot?: string;
}

/** `#hardware` tries engines in this order (a discrete GPU before an integrated one). */
export const PICK_ORDER: readonly Engine[] = ['cuda', 'vaapi', 'qsv', 'v4l2m2m', 'rkmpp'];
const CODECS: readonly HardwareCodec[] = ['h264', 'h265'];

interface Run {
  ok: boolean;
  stdout: string;
  /** Its stderr (the last few lines, joined), or what stopped it. */
  why: string;
}

/** Runs one short ffmpeg child to its end, bounded by the timeout and the signal. */
async function runChild(opts: DetectOptions, args: string[], label: string, stdout: boolean): Promise<Run> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const child = new ChildProcessOwner({ bin: opts.bin, args, label, grace: opts.grace, stdout: stdout ? 'pipe' : 'ignore', stderrLines: 5 });
  const chunks: Buffer[] = [];
  let size = 0;
  child.stdout?.on('data', (d: Buffer) => {
    // The encoder list is ~30 KB; more is not an answer worth holding.
    if ((size += d.length) <= 1 << 20) chunks.push(d);
  });
  let stopped = '';
  const stop = (why: string) => () => {
    stopped ||= why;
    child.close();
  };
  const onAbort = stop('detection stopped');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const timer = setTimeout(stop(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
  try {
    const exit = await child.exited;
    const out = Buffer.concat(chunks).toString('utf8');
    if (stopped) return { ok: false, stdout: out, why: stopped };
    if (exit.error) return { ok: false, stdout: out, why: exit.error.message };
    // The first lines say what failed ("Cannot load libcuda.so.1"), the last only that it did.
    const said = child
      .lastStderr()
      .map((l) => l.replace(/^\[(\S+) @ 0x[0-9a-f]+\] /, '$1: '))
      .join(' | ')
      .slice(0, 500);
    if (exit.code !== 0) return { ok: false, stdout: out, why: said || (exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`) };
    return { ok: true, stdout: out, why: '' };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    child.close();
    await child.done;
  }
}

/**
 * Encoder names from `ffmpeg -encoders`: after its legend (" V..... = Video", then " ------"),
 * lines like " V....D h264_vaapi   H.264/AVC (VAAPI)".
 */
export function parseEncoders(text: string): Set<string> {
  const names = new Set<string>();
  let listing = false;
  for (const line of text.split('\n')) {
    if (/^\s*-{3,}\s*$/.test(line)) listing = true;
    const m = listing && /^\s[VAS][F.][S.][X.][B.][D.]\s+(\S+)/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function names(dir: string, pattern: RegExp): Promise<string[]> {
  try {
    const all = (await readdir(dir)).filter((n) => pattern.test(n));
    return all.sort((a, b) => Number(/\d+$/.exec(a)?.[0]) - Number(/\d+$/.exec(b)?.[0]));
  } catch {
    return [];
  }
}

async function text(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Per engine, the devices worth a test encode, or why there are none. */
export async function candidates(devRoot = '/dev', sysRoot = '/sys'): Promise<Record<Engine, { devices: (string | undefined)[] } | { none: string }>> {
  const render = (await names(join(devRoot, 'dri'), /^renderD\d+$/)).map((n) => ({ n, path: join(devRoot, 'dri', n) }));
  // QSV is Intel's; a vendor file that cannot be read does not rule a node out.
  const intel: string[] = [];
  for (const { n, path } of render) {
    const vendor = await text(join(sysRoot, 'class', 'drm', n, 'device', 'vendor'));
    if (vendor === undefined || vendor === '0x8086') intel.push(path);
  }
  const nvidia = (await exists(join(devRoot, 'nvidiactl'))) || (await names(devRoot, /^nvidia\d+$/)).length > 0;
  // A memory-to-memory encoder (the Raspberry Pi's bcm2835-codec-encode is /dev/video11): sysfs
  // names it; a node whose name cannot be read is tried anyway.
  const video: string[] = [];
  for (const n of await names(devRoot, /^video\d+$/)) {
    const name = await text(join(sysRoot, 'class', 'video4linux', n, 'name'));
    if (name === undefined || /enc/i.test(name)) video.push(join(devRoot, n));
  }
  const rkmpp = await exists(join(devRoot, 'mpp_service'));
  const noRender = `no ${join(devRoot, 'dri', 'renderD*')} device`;
  return {
    vaapi: render.length > 0 ? { devices: render.map((r) => r.path) } : { none: noRender },
    qsv: intel.length > 0 ? { devices: intel } : { none: render.length > 0 ? 'no Intel render device' : noRender },
    cuda: nvidia ? { devices: ['0'] } : { none: `no ${join(devRoot, 'nvidia*')} device` },
    // h264_v4l2m2m finds the encoder node itself: one test, whichever node it is.
    v4l2m2m: video.length > 0 ? { devices: [undefined] } : { none: `no V4L2 memory-to-memory encoder in ${join(devRoot, 'video*')}` },
    rkmpp: rkmpp ? { devices: [undefined] } : { none: `no ${join(devRoot, 'mpp_service')} device` },
  };
}

/** One line for the log: what transcodes will use. */
export function summary(report: HardwareReport): string {
  const { h264, h265 } = report.pick;
  if (!h264 && !h265) return 'no hardware encoder found: using libx264 (and libx265)';
  const one = (codec: HardwareCodec, use: EngineUse | undefined, sw: string) =>
    use ? `${codec} on ${use.engine}${use.device ? ` (${use.device})` : ''}` : `${codec} in software (${sw})`;
  return `hardware encoding: ${one('h264', h264, 'libx264')}, ${one('h265', h265, 'libx265')}`;
}

/**
 * Finds what works; never rejects (a failure is an engine that does not work). The tests run one
 * after another, so that detection takes at most one core from the streams starting meanwhile.
 * Logs the outcome once at info.
 */
export async function detectHardware(opts: DetectOptions): Promise<HardwareReport> {
  const tests: EngineTest[] = [];
  let found: Awaited<ReturnType<typeof candidates>>;
  let encoders = new Set<string>();
  let listing = '';
  try {
    found = await candidates(opts.devRoot, opts.sysRoot);
    const anyDevice = ENGINES.some((e) => 'devices' in found[e]);
    if (anyDevice) {
      const r = await runChild(opts, ['-hide_banner', '-encoders'], 'ffmpeg -encoders', true);
      if (r.ok) encoders = parseEncoders(r.stdout);
      else listing = `ffmpeg -encoders failed: ${r.why}`;
    }
  } catch (e) {
    found = Object.fromEntries(ENGINES.map((e2) => [e2, { none: errorMessage(e) }])) as typeof found;
  }
  for (const engine of ENGINES) {
    const c = found[engine];
    for (const codec of CODECS) {
      const encoder = ENCODERS[engine][codec];
      if ('none' in c) {
        tests.push({ engine, codec, ok: false, info: c.none });
        continue;
      }
      if (!encoders.has(encoder)) {
        tests.push({ engine, codec, ok: false, info: listing || `${encoder} is not in this ffmpeg (ffmpeg -encoders)` });
        continue;
      }
      let test: EngineTest = { engine, codec, ok: false, info: 'not tried' };
      for (const device of c.devices) {
        if (opts.signal?.aborted) {
          test = { engine, codec, ok: false, info: 'detection stopped' };
          break;
        }
        const use: EngineUse = device === undefined ? { engine } : { engine, device };
        const r = await runChild(opts, testEncodeArgs(use, codec), `ffmpeg ${encoder} test`, false);
        test = { engine, codec, ok: r.ok, ...(device !== undefined && { device }), info: r.ok ? 'OK' : `test encode failed: ${r.why}` };
        log.debug({ engine, codec, device, info: test.info }, 'hardware test encode');
        if (r.ok) break;
      }
      tests.push(test);
    }
  }
  const pick: HardwareReport['pick'] = {};
  for (const codec of CODECS) {
    for (const engine of PICK_ORDER) {
      const t = tests.find((x) => x.engine === engine && x.codec === codec && x.ok);
      if (t) {
        pick[codec] = t.device === undefined ? { engine } : { engine, device: t.device };
        break;
      }
    }
  }
  const report = { tests, pick };
  log.info({ hardware: tests.filter((t) => t.ok).map((t) => `${t.engine}/${t.codec}`) }, summary(report));
  return report;
}
