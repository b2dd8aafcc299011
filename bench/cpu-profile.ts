// Where a process's JavaScript thread spent its time, from a V8 .cpuprofile (node --cpu-prof),
// counting only the samples inside a window. V8 stamps samples with the monotonic clock that
// process.hrtime() reads in every process of the machine, so the bench can name the window.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Samples in the window, and the share of them that were not idle. */
  samples: number;
  busyPercent: number;
  /** Share of the busy samples, by where the code lives. */
  byPlace: { place: string; percent: number }[];
  /** Share of the busy samples, by function (self time). */
  byFunction: { fn: string; percent: number }[];
}

/**
 * The newest main-thread .cpuprofile in `dir`. Node writes one per thread, named
 * CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; tsx's module loader runs in a worker
 * thread of its own, whose profile is only module loading.
 */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    .sort();
  return files.length ? path.join(dir, files.at(-1)!) : undefined;
}

/** Monotonic time in µs, on the clock V8 stamps samples with. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

export function summarizeProfile(file: string, fromUs: number, toUs: number, top = 12): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fnCount = new Map<string, number>();
  const placeCount = new Map<string, number>();
  let t = p.startTime;
  let inWindow = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    inWindow++;
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy++;
    const place = placeOf(functionName, url);
    placeCount.set(place, (placeCount.get(place) ?? 0) + 1);
    // Line 0 is what V8 reports for code it has no position for (tsx-compiled methods, often).
    const fn = `${functionName || '(anonymous)'} ${shortUrl(url)}${url && lineNumber > 0 ? `:${lineNumber + 1}` : ''}`.trim();
    fnCount.set(fn, (fnCount.get(fn) ?? 0) + 1);
  }
  const share = (m: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => ({ k, percent: (100 * v) / Math.max(1, busy) }));
  return {
    samples: inWindow,
    busyPercent: (100 * busy) / Math.max(1, inWindow),
    byPlace: share(placeCount).map(({ k, percent }) => ({ place: k, percent })),
    byFunction: share(fnCount)
      .slice(0, top)
      .map(({ k, percent }) => ({ fn: k, percent })),
  };
}

function placeOf(fn: string, url: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const s = /\/(src|bench|test)\/(.*)$/.exec(url);
  return s ? `camrelay ${s[1]}/${s[2]!.split('/')[0]}` : shortUrl(url);
}

function shortUrl(url: string): string {
  if (!url) return '';
  const m = /node_modules\/(.*)$/.exec(url);
  if (m) return m[1]!;
  const s = /\/((?:src|bench|test)\/.*)$/.exec(url);
  return s ? s[1]! : url.replace(/^file:\/\//, '');
}
