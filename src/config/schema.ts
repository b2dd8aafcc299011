import { z } from 'zod';
import { parseListen } from '../core/listen.js';
import type { StreamSettings } from '../core/stream.js';
import { DEFAULT_GOP_CACHE } from '../core/gop-cache.js';
import { DURATION_HINT, parseDuration } from './duration.js';

// config.yaml: go2rtc's shape where go2rtc has the key, snake_case in the file, camelCase and
// milliseconds in the Config the rest of camrelay reads. Validation reports every problem as a
// ConfigIssue (path + message); load.ts turns the path into a line of the file.

export interface StreamConfig {
  sources: string[];
  settings: StreamSettings;
}

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface Config {
  api: {
    listen: string;
    username?: string;
    password?: string;
    /** Host names (besides IP literals, localhost and this machine's names) a browser may use to reach us. */
    allowedHosts: string[];
    /** go2rtc's `api.origin`: '*' lets pages of any origin call the API and open the WebSocket (CORS); '' = same origin only. */
    origin: '' | '*';
    /** HTTP + WebSocket connections open at once; more are closed on accept. */
    maxConnections: number;
    /** ms a client has to send a request's headers (slowloris bound; WebSocket upgrades too). */
    headerTimeout: number;
    /** ms a WebSocket may stay silent (no message, no pong to our pings) before it is closed. */
    idleTimeout: number;
    /** Snapshot decoders (ffmpeg) running at once; a request beyond them gets 503. */
    maxSnapshots: number;
    /** ms a decoded snapshot is reused for the same stream and size. */
    snapshotCache: number;
  };
  rtsp: {
    listen: string;
    username?: string;
    password?: string;
    /** ms without a request or RTCP from a player before its session closes (default 60 s). */
    sessionTimeout?: number;
    /** Bytes a TCP player may have unsent before it is dropped (default 4 MiB). */
    maxSendBuffer?: number;
    /** RTSP connections open at once (players and publishers, ffmpeg children excepted); more are closed on accept. */
    maxConnections: number;
    /** ms from a request's first byte to its complete headers and body (slowloris bound). */
    headerTimeout: number;
    /**
     * Whether external publishers may ANNOUNCE into a stream that has configured sources without
     * RTSP credentials. undefined: only with rtsp.username/password set; `sources: []` streams always.
     */
    allowPublish?: boolean;
  };
  webrtc: {
    listen: string;
    candidates: string[];
    iceServers: IceServer[];
    portRange?: [number, number];
    timeouts: { connect: number; disconnect: number };
    /** Only 127.0.0.1 host candidates (not in go2rtc; for tests and single-host setups). */
    loopbackOnly?: boolean;
    /** Most WebRTC sessions open at once (HTTP and WebSocket together); undefined: no limit. */
    maxSessions?: number;
    /** WebRTC sessions still connecting (no ICE + DTLS yet) from one client address. */
    maxConnectingPerClient: number;
    /** The WebRTC library (undefined: DEFAULTS.webrtcBackend, 'auto' = node-datachannel where its binary loads, else werift). */
    backend?: WebRtcBackendChoice;
  };
  ffmpeg: { bin?: string; stopGrace: { quit: number; term: number } };
  log: { level: string };
  /** Insertion order is the file's order. */
  streams: Record<string, StreamConfig>;
  /** Streams kept running with no viewer (go2rtc's preload): name → media query. */
  preload: Record<string, string>;
  /** stream_defaults with the built-in defaults applied: the settings of streams added later. */
  streamDefaults: StreamSettings;
}

export type ConfigPath = (string | number)[];

export interface ConfigIssue {
  path: ConfigPath;
  message: string;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export const WEBRTC_BACKENDS = ['auto', 'werift', 'node-datachannel'] as const;
export type WebRtcBackendChoice = (typeof WEBRTC_BACKENDS)[number];

export const DEFAULTS = {
  apiListen: ':1984',
  rtspListen: ':8554',
  webrtcListen: ':8555',
  webrtcBackend: 'auto' as WebRtcBackendChoice,
  connectTimeout: 15_000,
  disconnectTimeout: 3_500,
  maxConnectingPerClient: 8,
  api: { maxConnections: 256, headerTimeout: 10_000, idleTimeout: 60_000, maxSnapshots: 4, snapshotCache: 1_000 },
  rtsp: { maxConnections: 256, headerTimeout: 10_000 },
  stopGrace: { quit: 300, term: 500 },
  logLevel: 'info',
  stream: {
    idleTimeout: 0,
    startTimeout: 10_000,
    backoff: { base: 500, max: 30_000, stableAfter: 30_000 },
    gopCache: DEFAULT_GOP_CACHE,
    stallTimeout: 10_000,
  } satisfies StreamSettings,
};

/** A listen address the servers can use (core's parser), without stray whitespace. */
export function isListenAddress(addr: string): boolean {
  if (/\s/.test(addr)) return false;
  try {
    parseListen(addr);
    return true;
  } catch {
    return false;
  }
}

/** What a value looks like, in the words error messages use. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  return typeof v;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' ? String(v) : describeValue(v);
}

const duration = z.unknown().transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected ${DURATION_HINT}, got ${show(v)}` });
    return z.NEVER;
  }
  return ms;
});

const positiveDuration = duration.refine((ms) => ms > 0, { message: 'must be more than 0' });

const positiveInt = z.number().int().positive();

const listen = z.string().superRefine((v, ctx) => {
  if (v !== '' && !isListenAddress(v)) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is not a listen address (":port", "host:port", "[v6]:port", or "" to disable)`,
    });
  }
});

/** A string or a list of strings, each non-empty (go2rtc takes both for `urls`, stream sources). */
const stringList = (what: string) =>
  z.unknown().transform((v, ctx) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) {
      const got = v === undefined ? 'nothing (the key is missing)' : describeValue(v);
      ctx.addIssue({ code: 'custom', message: `expected ${what} or a list of them, got ${got}` });
      return z.NEVER;
    }
    list.forEach((item: unknown, i) => {
      if (typeof item !== 'string' || item.trim() === '') {
        ctx.addIssue({
          code: 'custom',
          path: typeof v === 'string' ? [] : [i],
          message: `expected ${what}, got ${typeof item === 'string' ? 'an empty string' : describeValue(item)}`,
        });
      }
    });
    return list as string[];
  });

const portRange = z.unknown().transform((v, ctx): [number, number] => {
  let pair: unknown[] | undefined;
  if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(v);
    pair = m ? [Number(m[1]), Number(m[2])] : undefined;
  } else if (Array.isArray(v) && v.length === 2) {
    pair = v;
  }
  const [min, max] = pair ?? [];
  const isPort = (p: unknown): p is number => typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
  if (!isPort(min) || !isPort(max) || min > max) {
    ctx.addIssue({
      code: 'custom',
      message: `expected "min-max" or [min, max] with 1 <= min <= max <= 65535, got ${Array.isArray(v) ? JSON.stringify(v) : show(v)}`,
    });
    return z.NEVER;
  }
  return [min, max];
});

const auth = {
  username: z.string().optional(),
  password: z.string().optional(),
};

const backoffFields = z.strictObject({
  base: positiveDuration.optional(),
  max: positiveDuration.optional(),
  stable_after: duration.optional(),
});

const gopCacheFields = z.strictObject({
  max_bytes: z.number().int().min(0, { message: 'must be 0 (no cache) or more bytes' }).optional(),
  max_duration: positiveDuration.optional(),
});

const lifecycleFields = {
  idle_timeout: duration.optional(),
  start_timeout: positiveDuration.optional(),
  stall_timeout: positiveDuration.optional(),
  backoff: backoffFields.optional(),
  gop_cache: gopCacheFields.optional(),
};

const streamObject = z.strictObject({ sources: stringList('a source URL'), ...lifecycleFields });

const fileSchema = z.strictObject({
  api: z
    .strictObject({
      listen: listen.optional(),
      ...auth,
      allowed_hosts: z.array(z.string().min(1)).optional(),
      origin: z.enum(['', '*']).optional(),
      max_connections: positiveInt.optional(),
      header_timeout: positiveDuration.optional(),
      idle_timeout: positiveDuration.optional(),
      max_snapshots: positiveInt.optional(),
      snapshot_cache: duration.optional(),
    })
    .optional(),
  rtsp: z
    .strictObject({
      listen: listen.optional(),
      ...auth,
      session_timeout: positiveDuration.optional(),
      max_send_buffer: z.number().int().min(64 * 1024, { message: 'must be at least 65536 bytes' }).optional(),
      max_connections: positiveInt.optional(),
      header_timeout: positiveDuration.optional(),
      allow_publish: z.boolean().optional(),
    })
    .optional(),
  webrtc: z
    .strictObject({
      // node-datachannel: the one UDP port of every peer; werift binds per-peer ports (port_range).
      listen: listen.optional(),
      backend: z.enum(WEBRTC_BACKENDS).optional(),
      candidates: z.array(z.string().min(1)).optional(),
      ice_servers: z
        .array(
          z.strictObject({
            urls: stringList('an ICE server URL'),
            username: z.string().optional(),
            credential: z.string().optional(),
          }),
        )
        .optional(),
      port_range: portRange.optional(),
      loopback_only: z.boolean().optional(),
      max_sessions: z.number().int().positive().optional(),
      max_connecting_per_client: positiveInt.optional(),
      timeouts: z
        .strictObject({ connect: positiveDuration.optional(), disconnect: positiveDuration.optional() })
        .optional(),
    })
    .optional(),
  ffmpeg: z
    .strictObject({
      bin: z.string().optional(),
      stop_grace: z.strictObject({ quit: duration.optional(), term: duration.optional() }).optional(),
    })
    .optional(),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).optional() }).optional(),
  stream_defaults: z.strictObject(lifecycleFields).optional(),
  streams: z.record(z.string(), z.unknown()).optional(),
  // go2rtc's preload: stream name → what to keep running ("video&audio", "video=h264", or empty).
  preload: z.record(z.string(), z.string().nullable()).optional(),
});

type FileConfig = z.output<typeof fileSchema>;
type Lifecycle = z.output<typeof streamObject>;
type LifecycleOverrides = Partial<Pick<Lifecycle, 'idle_timeout' | 'start_timeout' | 'stall_timeout' | 'backoff' | 'gop_cache'>>;

function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

const EXPECTED_WORDS: Record<string, string> = { object: 'mapping', record: 'mapping', array: 'list' };

function fromZod(issues: readonly z.core.$ZodIssue[], data: unknown, prefix: ConfigPath): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path.map((k) => (typeof k === 'number' ? k : String(k)))];
    const where = formatPath(path) || 'the document';
    switch (iss.code) {
      case 'unrecognized_keys':
        for (const key of iss.keys) {
          out.push({ path: [...path, key], message: `unknown key "${formatPath([...path, key])}"` });
        }
        break;
      case 'invalid_type': {
        const actual = valueAt(data, path.slice(prefix.length));
        const expected = EXPECTED_WORDS[iss.expected] ?? iss.expected;
        out.push({
          path,
          message: actual === undefined ? `${where}: missing (expected ${expected})` : `${where}: expected ${expected}, got ${describeValue(actual)}`,
        });
        break;
      }
      case 'invalid_value':
        out.push({
          path,
          message: `${where}: expected one of ${iss.values.join(', ')}, got ${show(valueAt(data, path.slice(prefix.length)))}`,
        });
        break;
      default:
        out.push({ path, message: `${where}: ${iss.message}` });
    }
  }
  return out;
}

/** `webrtc.timeouts.connect`, `streams.cam2[0]`. */
export function formatPath(path: ConfigPath): string {
  let s = '';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : s === '' ? k : `.${k}`;
  return s;
}

/** `key:` with nothing after it means "use the default", as in most YAML configs. */
function dropNulls(v: unknown, path: string[]): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  // A stream with no value is a publish-only stream (go2rtc): its null must survive.
  const keepNulls = path.length === 1 && path[0] === 'streams';
  const out: Record<string, unknown> = {};
  for (const [k, child] of Object.entries(v)) {
    if (child === null && !keepNulls) continue;
    setOwn(out, k, dropNulls(child, [...path, k]));
  }
  return out;
}

function settings(defaults: StreamSettings, o: LifecycleOverrides): StreamSettings {
  return {
    idleTimeout: o.idle_timeout ?? defaults.idleTimeout,
    startTimeout: o.start_timeout ?? defaults.startTimeout,
    stallTimeout: o.stall_timeout ?? defaults.stallTimeout ?? DEFAULTS.stream.stallTimeout,
    backoff: {
      base: o.backoff?.base ?? defaults.backoff.base,
      max: o.backoff?.max ?? defaults.backoff.max,
      stableAfter: o.backoff?.stable_after ?? defaults.backoff.stableAfter,
    },
    gopCache: {
      maxBytes: o.gop_cache?.max_bytes ?? defaults.gopCache?.maxBytes ?? DEFAULT_GOP_CACHE.maxBytes,
      maxDuration: o.gop_cache?.max_duration ?? defaults.gopCache?.maxDuration ?? DEFAULT_GOP_CACHE.maxDuration,
    },
  };
}

function checkBackoff(s: StreamSettings, path: ConfigPath, issues: ConfigIssue[]): void {
  if (s.backoff.max < s.backoff.base) {
    issues.push({
      path: [...path, 'backoff'],
      message: `${formatPath([...path, 'backoff'])}: max (${s.backoff.max} ms) is less than base (${s.backoff.base} ms)`,
    });
  }
}

/** Why a stream name is unusable in a URL path, or undefined when it is fine. */
export function badStreamName(name: string): string | undefined {
  if (name === '') return 'a stream name must not be empty';
  // eslint-disable-next-line no-control-regex
  if (/[/\s\u0000-\u001f\u007f]/.test(name)) return `stream name ${JSON.stringify(name)} must not contain "/", whitespace or control characters`;
  return undefined;
}

/** obj[key] = value as an own property: a stream named `__proto__` must not set the prototype. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function parseStreams(
  raw: Record<string, unknown>,
  defaults: StreamSettings,
  issues: ConfigIssue[],
): Record<string, StreamConfig> {
  const streams: Record<string, StreamConfig> = {};
  for (const [name, value] of Object.entries(raw)) {
    const path: ConfigPath = ['streams', name];
    const nameProblem = badStreamName(name);
    if (nameProblem) {
      issues.push({ path, message: nameProblem });
      continue;
    }
    if (value === null || value === undefined) {
      setOwn(streams, name, { sources: [], settings: settings(defaults, {}) });
      continue;
    }
    const isObject = typeof value === 'object' && !Array.isArray(value);
    const parsed = isObject ? streamObject.safeParse(value) : stringList('a source URL').safeParse(value);
    if (!parsed.success) {
      issues.push(...fromZod(parsed.error.issues, value, path));
      continue;
    }
    if (Array.isArray(parsed.data)) {
      setOwn(streams, name, { sources: parsed.data, settings: settings(defaults, {}) });
    } else {
      const s = settings(defaults, parsed.data);
      checkBackoff(s, path, issues);
      setOwn(streams, name, { sources: parsed.data.sources, settings: s });
    }
  }
  return streams;
}

const emptyToUndefined = (s: string | undefined): string | undefined => (s === '' ? undefined : s);

function toConfig(f: FileConfig, issues: ConfigIssue[]): Config {
  const defaults = settings(DEFAULTS.stream, f.stream_defaults ?? {});
  checkBackoff(defaults, ['stream_defaults'], issues);
  const w = f.webrtc ?? {};
  const config: Config = {
    streamDefaults: defaults,
    api: {
      listen: f.api?.listen ?? DEFAULTS.apiListen,
      allowedHosts: f.api?.allowed_hosts ?? [],
      origin: f.api?.origin ?? '',
      maxConnections: f.api?.max_connections ?? DEFAULTS.api.maxConnections,
      headerTimeout: f.api?.header_timeout ?? DEFAULTS.api.headerTimeout,
      idleTimeout: f.api?.idle_timeout ?? DEFAULTS.api.idleTimeout,
      maxSnapshots: f.api?.max_snapshots ?? DEFAULTS.api.maxSnapshots,
      snapshotCache: f.api?.snapshot_cache ?? DEFAULTS.api.snapshotCache,
    },
    rtsp: {
      listen: f.rtsp?.listen ?? DEFAULTS.rtspListen,
      maxConnections: f.rtsp?.max_connections ?? DEFAULTS.rtsp.maxConnections,
      headerTimeout: f.rtsp?.header_timeout ?? DEFAULTS.rtsp.headerTimeout,
    },
    webrtc: {
      listen: w.listen ?? DEFAULTS.webrtcListen,
      candidates: w.candidates ?? [],
      iceServers: (w.ice_servers ?? []).map((s) => ({
        urls: s.urls,
        ...(s.username !== undefined && { username: s.username }),
        ...(s.credential !== undefined && { credential: s.credential }),
      })),
      timeouts: {
        connect: w.timeouts?.connect ?? DEFAULTS.connectTimeout,
        disconnect: w.timeouts?.disconnect ?? DEFAULTS.disconnectTimeout,
      },
      maxConnectingPerClient: w.max_connecting_per_client ?? DEFAULTS.maxConnectingPerClient,
    },
    ffmpeg: {
      stopGrace: {
        quit: f.ffmpeg?.stop_grace?.quit ?? DEFAULTS.stopGrace.quit,
        term: f.ffmpeg?.stop_grace?.term ?? DEFAULTS.stopGrace.term,
      },
    },
    log: { level: f.log?.level ?? DEFAULTS.logLevel },
    streams: parseStreams(f.streams ?? {}, defaults, issues),
    preload: {},
  };
  for (const [name, query] of Object.entries(f.preload ?? {})) {
    if (!Object.hasOwn(config.streams, name)) issues.push({ path: ['preload', name], message: `preload.${name}: no stream named "${name}"` });
    else setOwn(config.preload, name, query ?? '');
  }
  // Empty credentials mean "no auth" in go2rtc; leaving them out lets callers test presence.
  for (const section of [config.api, config.rtsp] as const) {
    const from = section === config.api ? f.api : f.rtsp;
    const username = emptyToUndefined(from?.username);
    const password = emptyToUndefined(from?.password);
    if (username !== undefined) section.username = username;
    if (password !== undefined) section.password = password;
  }
  if (f.rtsp?.session_timeout !== undefined) config.rtsp.sessionTimeout = f.rtsp.session_timeout;
  if (f.rtsp?.max_send_buffer !== undefined) config.rtsp.maxSendBuffer = f.rtsp.max_send_buffer;
  if (f.rtsp?.allow_publish !== undefined) config.rtsp.allowPublish = f.rtsp.allow_publish;
  if (w.port_range) config.webrtc.portRange = w.port_range;
  if (w.loopback_only !== undefined) config.webrtc.loopbackOnly = w.loopback_only;
  if (w.max_sessions !== undefined) config.webrtc.maxSessions = w.max_sessions;
  if (w.backend !== undefined) config.webrtc.backend = w.backend;
  const bin = emptyToUndefined(f.ffmpeg?.bin);
  if (bin !== undefined) config.ffmpeg.bin = bin;
  return config;
}

/** Validates the parsed document (after env substitution); the config only when there are no issues. */
export function validateConfig(data: unknown): { config?: Config; issues: ConfigIssue[] } {
  const input = data === null || data === undefined ? {} : dropNulls(data, []);
  // zod's records silently drop a `__proto__` key; say so instead of losing the stream.
  const reserved: ConfigIssue[] = (['streams', 'preload'] as const)
    .filter((section) => Object.hasOwn(Object(valueAt(input, [section])), '__proto__'))
    .map((section) => ({ path: [section, '__proto__'], message: `${section}.__proto__: "__proto__" is reserved and cannot name a stream` }));
  const parsed = fileSchema.safeParse(input);
  if (!parsed.success) return { issues: [...reserved, ...fromZod(parsed.error.issues, input, [])] };
  const issues: ConfigIssue[] = [...reserved];
  const config = toConfig(parsed.data, issues);
  return issues.length > 0 ? { issues } : { config, issues };
}
