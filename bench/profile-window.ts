// Where a window of a V8 .cpuprofile went, in milliseconds: by the code a sample was in (self,
// at file or package granularity) and by every camrelay function, package and Node module on its
// stack (inclusive), so that "express routing" or "the Host check" can be named with a cost.
// bench/cpu-profile.ts gives shares of self time by function; this adds the stacks.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface WindowCost {
  windowMs: number;
  /** Main-thread time not idle (garbage collection included). */
  busyMs: number;
  gcMs: number;
  samples: number;
  /** Self time by where the sampled code lives, largest first. */
  self: { place: string; ms: number }[];
  /** Time with this on the stack, largest first (a sample counts once per key). */
  inclusive: { key: string; ms: number }[];
  /**
   * Self time given to the nearest camrelay function or package on the stack (Node's own code
   * and natives count for whoever called them); samples with neither, by the Node module sampled.
   */
  owner: { key: string; ms: number }[];
  /** Busy time with child_process on the stack (spawning ffmpeg: fork and exec are synchronous). */
  spawnMs: number;
  /** With `focus` on the stack: its total, and self time by function (name file:line). */
  focus?: { fn: string; ms: number; leaves: { key: string; ms: number }[] };
}

/** Cost of the samples stamped inside [fromUs, toUs] (process.hrtime clock, in µs). */
export function windowCost(file: string, fromUs: number, toUs: number, top = 16, focus?: string): WindowCost {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const owner = new Map<string, number>();
  let spawn = 0;
  let focusUs = 0;
  const focusLeaves = new Map<string, number>();
  let t = p.startTime;
  let busy = 0;
  let gc = 0;
  let samples = 0;
  const mean = p.timeDeltas.length ? p.timeDeltas.reduce((a, b) => a + b, 0) / p.timeDeltas.length : 1000;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    samples++;
    // A sample stands for the time until the next one (as DevTools counts it).
    const us = Math.max(0, p.timeDeltas[i + 1] ?? mean);
    const leaf = byId.get(p.samples[i]!);
    if (!leaf || leaf.callFrame.functionName === '(idle)') continue;
    busy += us;
    if (leaf.callFrame.functionName === '(garbage collector)') gc += us;
    const place = placeOf(leaf);
    self.set(place, (self.get(place) ?? 0) + us);
    const seen = new Set<string>();
    let own: string | undefined;
    let focused = false;
    for (let id: number | undefined = leaf.id, depth = 0; id !== undefined && depth < 500; id = parent.get(id), depth++) {
      if (focus && byId.get(id)!.callFrame.functionName === focus) focused = true;
      const k = inclusiveKey(byId.get(id)!);
      if (!k) continue;
      seen.add(k);
      if (!own && !k.startsWith('node:')) own = k;
    }
    for (const k of seen) incl.set(k, (incl.get(k) ?? 0) + us);
    own ??= place;
    if (focused) {
      focusUs += us;
      const { functionName, url, lineNumber } = leaf.callFrame;
      const k = `${functionName || '(anonymous)'}${url ? ` ${url.startsWith('node:') ? url : (pkgOf(url) ?? srcOf(url) ?? url)}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}` : ''}`;
      focusLeaves.set(k, (focusLeaves.get(k) ?? 0) + us);
    }
    owner.set(own, (owner.get(own) ?? 0) + us);
    if (seen.has('node:child_process') || seen.has('node:internal/child_process')) spawn += us;
  }
  const ms = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, v / 1000] as const);
  return {
    windowMs: (toUs - fromUs) / 1000,
    busyMs: busy / 1000,
    gcMs: gc / 1000,
    samples,
    self: ms(self).map(([place, v]) => ({ place, ms: v })),
    inclusive: ms(incl).map(([key, v]) => ({ key, ms: v })),
    owner: ms(owner).map(([key, v]) => ({ key, ms: v })),
    spawnMs: spawn / 1000,
    focus: focus ? { fn: focus, ms: focusUs / 1000, leaves: ms(focusLeaves).map(([key, v]) => ({ key, ms: v })) } : undefined,
  };
}

function pkgOf(url: string): string | undefined {
  return /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
}

function srcOf(url: string): string | undefined {
  return /\/((?:src|bench|test)\/.*)$/.exec(url)?.[1];
}

function placeOf(n: ProfileNode): string {
  const { functionName, url } = n.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  const pkg = pkgOf(url);
  if (pkg) return pkg;
  if (url.startsWith('node:')) return url;
  return srcOf(url) ?? url;
}

/** camrelay functions by name and line; packages and Node modules as a whole; nothing for the rest. */
function inclusiveKey(n: ProfileNode): string | undefined {
  const { functionName, url, lineNumber } = n.callFrame;
  if (!url) return undefined;
  const pkg = pkgOf(url);
  if (pkg) return `package ${pkg}`;
  if (url.startsWith('node:')) return url;
  const src = srcOf(url);
  if (src?.startsWith('src/')) return `${functionName || '(anonymous)'} ${src}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}`;
  return undefined;
}
