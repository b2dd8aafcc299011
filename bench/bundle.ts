// The benchmarks measure what `npm start` runs: src/ bundled by scripts/build.mjs, started with
// plain node. Built once per bench process into a directory of its own, so that a camrelay
// running from dist/ meanwhile is left alone.
import { execFileSync } from 'node:child_process';
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
