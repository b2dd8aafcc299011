// The benchmarks measure what `npm start` runs: src/ bundled by scripts/build.mjs, started with
// plain node. Built once per bench process into a directory of its own, so that a camrelay
// running from dist/ meanwhile is left alone.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, '.bundle-bench');
let built = false;

/** The bundle's directory (its entry is main.js), built on first use. */
export function ensureBundle(): string {
  if (!built) {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), OUT], { cwd: ROOT, stdio: 'inherit', timeout: 60000 });
    built = true;
  }
  return OUT;
}

/**
 * The node flags `npm start` gives the bundle, read from package.json's start script so that the
 * benchmarks cannot drift from it.
 */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const m = /\bnode((?: --\S+)*) dist\/main\.js\b/.exec(pkg.scripts.start);
  if (!m) throw new Error(`package.json: the start script does not run dist/main.js: ${pkg.scripts.start}`);
  return m[1]!.split(' ').filter(Boolean);
}
