/**
 * A source failure. `permanent` failures (a file or device that does not exist, a codec we cannot
 * serve) are reported to waiting viewers at once instead of being retried until start_timeout.
 */
export class SourceError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
    this.name = 'SourceError';
  }
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
