// File descriptors: Node raises the soft RLIMIT_NOFILE to the hard limit when it starts (Linux),
// so what /proc/self/limits shows is what we have. It is logged once at start. Running out is not
// reported by Node for a listening socket: libuv then accepts and closes the waiting connections
// by itself (its "EMFILE trick") and no 'error' is emitted, so the clients are dropped silently.
// Two answers: api.max_connections is lowered to what the limit leaves room for, and a watch
// counts our open fds and logs (at most once per interval) when they are nearly all used.
import { readFileSync, readdirSync } from 'node:fs';
import { log } from '../core/log.js';
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';

/** At most one "out of file descriptors" line per this many ms. */
export const FD_LOG_INTERVAL_MS = 10_000;
/** How often the open fds are counted. */
export const FD_WATCH_MS = 2_000;
/** fds kept for everything but API connections: ffmpeg pipes, WebRTC and RTSP sockets, files. */
export const FD_RESERVE = 128;
/** Within this many of the limit counts as out of fds (the next burst of accepts would fail). */
const FD_MARGIN = 16;

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

/** As read at start. */
let known: FdLimit | undefined;

/**
 * Logs the limit once and returns the API connection cap that fits in it: api.max_connections,
 * or less when the limit leaves no room for it beside FD_RESERVE (at least 16).
 */
export function fitConnectionCap(apiMax: number, rtspMax: number): number {
  const l = (known = fdLimit());
  if (!l) return apiMax;
  const fields = { soft: l.soft, hard: l.hard, api_max_connections: apiMax, rtsp_max_connections: rtspMax };
  const room = l.soft - FD_RESERVE;
  if (apiMax > room) {
    const cap = Math.max(16, room);
    log.warn({ ...fields, api_connections_used: cap }, `open-files limit (RLIMIT_NOFILE ${l.soft}) leaves no room for api.max_connections ${apiMax}: using ${cap}; raise the limit (ulimit -n, docker --ulimit nofile=) to allow more`);
    return cap;
  }
  if (apiMax + rtspMax + FD_RESERVE > l.soft) {
    log.warn(fields, 'open-files limit (RLIMIT_NOFILE) is below api.max_connections + rtsp.max_connections + other needs: a flood of RTSP connections can use the last fds; raise the limit (ulimit -n, docker --ulimit nofile=)');
  } else {
    log.info(fields, 'open-files limit (RLIMIT_NOFILE)');
  }
  return apiMax;
}

export function isFdExhausted(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

const exhausted = new LogThrottle(
  'out of file descriptors (EMFILE): new connections are being dropped; raise the open-files limit (ulimit -n) or lower the connection caps',
  FD_LOG_INTERVAL_MS,
  'error',
);

/**
 * Counts one sign of fd exhaustion (camrelay_api_refused_total{reason="fd_limit"}) and logs it at
 * most once per FD_LOG_INTERVAL_MS. `where`: 'api', 'rtsp', 'watch'.
 */
export function reportFdExhausted(where: string, fields: Record<string, unknown> = {}): void {
  countRefusal('fd_limit');
  exhausted.hit({ where, soft: known?.soft, hard: known?.hard, ...fields });
}

/** Counts our open fds every FD_WATCH_MS; returns the stop. */
export function watchFds(): () => void {
  const limit = known?.soft;
  if (limit === undefined || !Number.isFinite(limit)) return () => undefined;
  const timer = setInterval(() => {
    let open: number;
    try {
      open = readdirSync('/proc/self/fd').length;
    } catch (e) {
      if (isFdExhausted(e)) reportFdExhausted('watch', { code: (e as NodeJS.ErrnoException).code, open: limit });
      return;
    }
    if (open >= limit - FD_MARGIN) reportFdExhausted('watch', { code: 'EMFILE', open });
  }, FD_WATCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}
