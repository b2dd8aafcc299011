// Snapshot decoders under Linux's SCHED_IDLE policy. Nice 19 alone was not enough on 2 cores: a
// burst of 4 decoders still kept camrelay's event loop waiting for a core 180–280 ms, because a
// nice-0 task waking up does not always preempt a nice-19 one at once; a SCHED_IDLE task is
// preempted by any other task that wakes (and runs only on cores nothing else wants). Node cannot
// set a scheduling policy itself, so the child is started through util-linux's `chrt`, which
// execs the real program in place (same pid: signals and the process group are unchanged).
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { log } from '../core/log.js';

let prefix: string[] | undefined;

function findChrt(): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).filter(Boolean);
  for (const d of dirs) {
    const p = join(d, 'chrt');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The argv prefix that starts a program under SCHED_IDLE, or [] where that cannot work (not Linux,
 * no chrt, or a sandbox that forbids the policy). Probed once, on first use: one short run of
 * `chrt --idle 0 true`, so a refusal is found here and not as a failed snapshot.
 */
export function idlePrefix(): string[] {
  if (prefix) return prefix;
  prefix = [];
  if (process.platform !== 'linux') return prefix;
  const chrt = findChrt();
  if (!chrt) {
    log.info('chrt (util-linux) not found: snapshot decoders run at nice 19 only');
    return prefix;
  }
  const probe = spawnSync(chrt, ['--idle', '0', 'true'], { stdio: 'ignore', timeout: 2000 });
  if (probe.status === 0) prefix = [chrt, '--idle', '0'];
  else log.info({ status: probe.status, err: probe.error?.message }, 'chrt --idle refused here: snapshot decoders run at nice 19 only');
  return prefix;
}
