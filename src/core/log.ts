import { pino, type Logger } from 'pino';
import sonicBoom from 'sonic-boom';

// sonic-boom is CommonJS (module.exports = the class); its typings declare ES exports, which
// NodeNext reads as the module namespace. The value imported is the class itself.
const SonicBoom = sonicBoom as unknown as typeof import('sonic-boom').SonicBoom;

export type { Logger };

/**
 * Bytes of log lines held while stdout does not take them; past that, new lines are dropped and
 * counted. pino's default destination writes synchronously and, on a full pipe (a log collector
 * that stalled, a parent that stopped reading), sleeps and retries for ever inside the log call:
 * the whole process stops, shutdown included. Written asynchronously instead, a slow stdout only
 * costs memory up to this bound.
 */
const LOG_BUFFER_BYTES = 4 * 2 ** 20;

const out = new SonicBoom({ fd: 1, sync: false, maxLength: LOG_BUFFER_BYTES });
let dropped = 0;
let ended = false;
out.on('drop', () => dropped++);
out.on('error', (e: NodeJS.ErrnoException) => {
  // Nobody will ever read stdout again (EPIPE): stop writing rather than fail on every line.
  // Anything else is retried with the next line.
  if (e.code === 'EPIPE') stopWriting();
});

function stopWriting(): void {
  // pino holds this stream: swapping its write is the only way to turn it into a sink. Returns
  // true as a stream's write does when it wants more.
  out.write = () => true;
}

// One root logger for the process; modules take children with their own bindings (stream, session).
export let log: Logger = pino({ level: process.env.CAMRELAY_LOG_LEVEL ?? 'info', base: undefined }, out);

export function setLogLevel(level: string): void {
  log.level = level;
}

/** Replace the root logger (tests silence it or capture it). */
export function setRootLogger(l: Logger): void {
  log = l;
}

/** Log lines dropped because stdout did not take them (see LOG_BUFFER_BYTES). */
export function droppedLogLines(): number {
  return dropped;
}

/**
 * Writes out what is held and ends the log output, for at most `ms`: true when everything was
 * written. Lines logged from here on are dropped: this is for the last moments before exit, and
 * nothing may wait on a stdout nobody reads.
 */
export function endLog(ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (ended) return resolve(true);
    ended = true;
    const t = setTimeout(() => resolve(false), ms);
    out.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    out.end();
    // An ended stream throws on write; what end() has to write is already held.
    stopWriting();
  });
}

/** Hides user:password in any URL-looking text, so credentials never reach a log or the API. */
export function maskCredentials(text: string): string {
  // Up to the last '@' before the host: passwords with a raw '@' or '/' in them happen.
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s]*?@(?=[^@\s/]*(?:[/\s#?]|$))/gi, '$1***:***@');
}
