import { pino, type Logger } from 'pino';

export type { Logger };

// One root logger for the process; modules take children with their own bindings (stream, session).
export let log: Logger = pino({ level: process.env.CAMRELAY_LOG_LEVEL ?? 'info', base: undefined });

export function setLogLevel(level: string): void {
  log.level = level;
}

/** Replace the root logger (tests silence it or capture it). */
export function setRootLogger(l: Logger): void {
  log = l;
}

/** Hides user:password in any URL-looking text, so credentials never reach a log or the API. */
export function maskCredentials(text: string): string {
  // Up to the last '@' before the host: passwords with a raw '@' or '/' in them happen.
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s]*?@(?=[^@\s/]*(?:[/\s#?]|$))/gi, '$1***:***@');
}
