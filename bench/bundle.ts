// The benchmarks measure what `npm start` runs: src/ bundled by scripts/build.mjs, started with
// plain node. Built once per bench process into a directory of its own, so that a camrelay
// running from dist/ meanwhile is left alone.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');
/**
 * The camrelay tree measured: this one, or another checkout named by CAMRELAY_BENCH_TREE (with its
 * node_modules), so that an older commit's figures come from this harness on this machine: a
 * before/after that no other run's numbers can give, since the machines change between sessions.
 */
export const TREE = process.env.CAMRELAY_BENCH_TREE ? path.resolve(process.env.CAMRELAY_BENCH_TREE) : ROOT;
const OUT = path.join(TREE, '.bundle-bench');
let built = false;

/** The bundle's directory (its entry is main.js), built on first use. */
export function ensureBundle(): string {
  if (!built) {
    execFileSync(process.execPath, [path.join(TREE, 'scripts/build.mjs'), OUT], { cwd: TREE, stdio: 'inherit', timeout: 60000 });
    built = true;
  }
  return OUT;
}

/** The start script's `VAR=value ... node --flag ... dist/main.js`, read from package.json. */
function startScript(): { env: Record<string, string>; flags: string[] } {
  const pkg = JSON.parse(readFileSync(path.join(TREE, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const m = /(?:^|&&\s*)((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)node((?: --\S+)*) dist\/main\.js\b/.exec(pkg.scripts.start);
  if (!m) throw new Error(`package.json: the start script does not run dist/main.js: ${pkg.scripts.start}`);
  const env = Object.fromEntries(m[1]!.split(/\s+/).filter(Boolean).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  return { env, flags: m[2]!.split(' ').filter(Boolean) };
}

/**
 * The node flags `npm start` gives the bundle, read from package.json's start script so that the
 * benchmarks cannot drift from it.
 */
export function startFlags(): string[] {
  return startScript().flags;
}

/** The environment `npm start` sets for the bundle (glibc's malloc settings), from the same script. */
export function startEnv(): Record<string, string> {
  return startScript().env;
}
