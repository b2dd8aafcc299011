// File descriptors: Node raises the soft RLIMIT_NOFILE to the hard limit when it starts (Linux),
// so what /proc/self/limits shows is what we have. Logged once at start; running out (accept()
// failing with EMFILE/ENFILE) is logged at most once per interval, with how often it happened.
import { readFileSync } from 'node:fs';
import { log } from '../core/log.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';

/** At most one "out of file descriptors" line per this many ms. */
export const FD_LOG_INTERVAL_MS = 10_000;

export interface FdLimit {
  soft: number;
  hard: number;
}

/** The open-files limit of this process, or undefined where /proc is not there. */
export function fdLimit(limitsText?: string): FdLimit | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const num = (v: string) => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: num(m[1]!), hard: num(m[2]!) };
}

/** Logs the limit once; warns when the connection caps alone could use most of it. */
export function logFdLimit(connectionCaps: number): void {
  const l = (known = fdLimit());
  if (!l) return;
  const fields = { soft: l.soft, hard: l.hard, connection_caps: connectionCaps };
  // Each connection is one fd; ffmpeg pipes, WebRTC sockets and the rest need room beside them.
  if (l.soft < connectionCaps + 256) {
    log.warn(fields, 'open-files limit (RLIMIT_NOFILE) is low for the configured connection caps: raise it (ulimit -n, docker --ulimit nofile=) or lower api.max_connections/rtsp.max_connections');
  } else {
    log.info(fields, 'open-files limit (RLIMIT_NOFILE)');
  }
}

/** As logged at start. */
let known: FdLimit | undefined;

export function isFdExhausted(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

const exhausted = new LogThrottle(
  'out of file descriptors: new connections are being refused; raise the open-files limit (ulimit -n) or lower the connection caps',
  FD_LOG_INTERVAL_MS,
  'error',
);

/**
 * Counts one accept() that failed for want of fds (camrelay_api_refused_total{reason="fd_limit"})
 * and logs it at most once per FD_LOG_INTERVAL_MS. `where`: 'api' or 'rtsp'.
 */
export function reportFdExhausted(where: string, e: NodeJS.ErrnoException): void {
  countRefusal('fd_limit');
  // Not read again here: with no fd left, /proc cannot be opened either.
  const l = known;
  exhausted.hit({ where, code: e.code, soft: l?.soft, hard: l?.hard });
}
