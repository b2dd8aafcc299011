import { DEFAULTS } from './defaults.js';
import type { FileConfig } from './file-schema.js';
import { setOwn } from './own-property.js';
import { checkBackoff, parseStreams, settings } from './streams.js';
import type { Config, ConfigIssue } from './types.js';

// The file as zod parsed it (snake_case, keys optional) becomes the Config camrelay reads: every
// default applied, optional settings left out rather than undefined, cross-key checks done.

const emptyToUndefined = (s: string | undefined): string | undefined => (s === '' ? undefined : s);

export function toConfig(f: FileConfig, issues: ConfigIssue[]): Config {
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
      maxMjpegEncoders: f.api?.max_mjpeg_encoders ?? DEFAULTS.api.maxMjpegEncoders,
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
  const tlsListen = emptyToUndefined(f.api?.tls_listen);
  if (tlsListen !== undefined) {
    const cert = emptyToUndefined(f.api?.tls_cert);
    const key = emptyToUndefined(f.api?.tls_key);
    // go2rtc then starts no HTTPS and says nothing: an HTTPS port that silently is not there is worse.
    for (const [name, v] of [['tls_cert', cert], ['tls_key', key]] as const) {
      if (v === undefined) issues.push({ path: ['api', 'tls_listen'], message: `api.tls_listen is set but api.${name} is not: HTTPS needs a certificate (api.tls_cert) and its private key (api.tls_key), each a file path or PEM text` });
    }
    if (cert !== undefined && key !== undefined) config.api.tls = { listen: tlsListen, cert, key };
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
