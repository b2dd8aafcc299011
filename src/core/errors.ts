/**
 * A source failure.
 * - `permanent`: retrying cannot help (a file or device that does not exist, a codec we cannot
 *   serve): waiting viewers are told at once, and a secondary source is not retried.
 * - `immediate`: the camera said no (connection refused or reset, unknown host, 401/403/404):
 *   waiting viewers are told at once with that reason, as go2rtc does (~0.2 s) instead of after
 *   start_timeout; the source is still retried with backoff while anyone stays attached (a camera
 *   rebooting refuses for a while). Every permanent failure is immediate.
 */
export class SourceError extends Error {
  readonly immediate: boolean;
  constructor(
    message: string,
    readonly permanent = false,
    immediate = false,
  ) {
    super(message);
    this.name = 'SourceError';
    this.immediate = permanent || immediate;
  }
}

/** Node's socket and DNS error codes that mean "the camera is not there" (not "it is slow"). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** Whether a socket error (connect, DNS, read) is one a waiting viewer should hear of at once. */
export function isUnreachable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE.has(code);
}

/** RTSP/HTTP statuses that say the camera will not serve this URL to us as we ask now. */
export function isRefusalStatus(status: number): boolean {
  return status === 401 || status === 403 || status === 404;
}

export class StartTimeoutError extends Error {
  constructor(stream: string, ms: number, last?: Error) {
    super(`stream "${stream}" did not start within ${ms} ms` + (last ? `: ${last.message}` : ''));
    this.name = 'StartTimeoutError';
  }
}

export class StreamClosedError extends Error {
  constructor(stream: string, why: string) {
    super(`stream "${stream}": ${why}`);
    this.name = 'StreamClosedError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
