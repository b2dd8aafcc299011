import type { StreamSettings } from '../core/stream.js';

// The typed Config the rest of camrelay reads: camelCase and milliseconds, whatever the file
// spelled (snake_case, duration strings). Only the shapes live here; schema.ts builds them.

export interface StreamConfig {
  sources: string[];
  settings: StreamSettings;
}

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export const WEBRTC_BACKENDS = ['auto', 'werift', 'node-datachannel'] as const;
export type WebRtcBackendChoice = (typeof WEBRTC_BACKENDS)[number];

export interface Config {
  api: {
    /** '' = no HTTP listener (go2rtc's way to serve HTTPS only). */
    listen: string;
    /**
     * HTTPS beside (or instead of) HTTP, from go2rtc's api.tls_listen / tls_cert / tls_key; absent
     * when tls_listen is unset or "". `cert` and `key` are what the file says: PEM text or a path
     * (read at startup by src/api/tls.ts). The key may be inline: never log or serve this object.
     */
    tls?: { listen: string; cert: string; key: string };
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
    /** MJPEG encoders (ffmpeg, one per stream and size) at once; a viewer needing one more gets 503. */
    maxMjpegEncoders: number;
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

/** Where in the file a problem is: keys and list indexes from the document's root. */
export type ConfigPath = (string | number)[];

export interface ConfigIssue {
  path: ConfigPath;
  message: string;
}
