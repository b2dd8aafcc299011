// Installs the process-wide handlers of src/core/uncaught.ts: log with the stack, count, and exit
// only on the policy's verdict.
import { log } from '../core/log.js';
import { UncaughtPolicy, type UncaughtKind } from '../core/uncaught.js';

export function installLastResort(exit: (why: string) => void, proc: NodeJS.Process = process): () => void {
  const policy = new UncaughtPolicy();
  const handle = (kind: UncaughtKind, e: unknown) => {
    const verdict = policy.record(kind, e);
    log.error(
      { kind, err: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined, exiting: verdict.exit },
      verdict.exit ? `uncaught ${kind}: exiting (${verdict.why})` : `uncaught ${kind} (a bug; camrelay carries on)`,
    );
    if (verdict.exit) exit(verdict.why);
  };
  const onException = (e: unknown) => handle('exception', e);
  const onRejection = (e: unknown) => handle('rejection', e);
  proc.on('uncaughtException', onException);
  proc.on('unhandledRejection', onRejection);
  return () => {
    proc.off('uncaughtException', onException);
    proc.off('unhandledRejection', onRejection);
  };
}
