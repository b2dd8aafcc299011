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
// Every line is masked as it is written (maskJsonText): a URL logged without maskCredentials
// (an RTSP request line, an ffmpeg message) still shows no password.
export let log: Logger = pino({ level: process.env.CAMRELAY_LOG_LEVEL ?? 'info', base: undefined, hooks: { streamWrite: maskJsonText } }, out);

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

// Up to the last '@' before the host: passwords with a raw '@' or '/' in them happen.
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s]*?@(?=[^@\s/]*(?:[/\s#?]|$))/gi;
// The same inside JSON text: never across a '"', which would join two strings of the line.
const USERINFO_JSON = /([a-z][a-z0-9+.-]*:\/\/)[^\s"]*?@(?=[^@\s/"]*(?:[/\s#?"]|$))/gi;
/**
 * Query parameters that carry credentials in camera URLs (`?user=admin&password=…`, `&token=…`),
 * case-insensitive. Their values are masked; the names stay, to show what was there.
 */
const SECRET_PARAMS = /([?&;](?:user|username|password|passwd|pass|pwd|token|access_token|auth|key|api_key|apikey|secret)=)[^&#\s"]*/gi;

/**
 * Hides credentials in any URL-looking text (user:password before the host, and secret query
 * parameters), so they never reach a log or the API.
 */
export function maskCredentials(text: string): string {
  return text.replace(USERINFO, '$1***:***@').replace(SECRET_PARAMS, '$1***');
}

/** maskCredentials for serialized JSON (a log line, an API answer): the result stays valid JSON. */
export function maskJsonText(json: string): string {
  if (!json.includes('://') && !json.includes('=')) return json;
  return json.replace(USERINFO_JSON, '$1***:***@').replace(SECRET_PARAMS, '$1***');
}
