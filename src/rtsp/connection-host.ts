// What an RTSP server connection needs from its server (RtspServer implements it), and its bounds.
import type { AuthChecker } from './auth.js';
import { DEFAULT_READER_LIMITS, type RtspReaderLimits } from './message.js';
import type { PlayerContext, RtspPlayer } from './player.js';
import type { PublishSlot } from './publish-slot.js';
import type { RtspServerConnection } from './server-connection.js';

/** Why the server refused a connection or a request, as counted in camrelay_rtsp_refused_total. */
export const RTSP_REFUSAL_REASONS = ['max_connections', 'header_timeout', 'publish_forbidden'] as const;
export type RtspRefusalReason = (typeof RTSP_REFUSAL_REASONS)[number];

/** What a connection needs from its server. */
export interface ConnectionHost {
  /**
   * The slot for a publish path if it is known and unused; it is then bound to `conn`. A known
   * stream that may not be published into by this client answers why (403).
   */
  claimPublishPath(path: string, conn: RtspServerConnection): PublishSlot | PublishRefused | undefined;
  /** A bound closed this connection, or its ANNOUNCE was forbidden (for a metric). */
  refused(reason: RtspRefusalReason): void;
  /** A player for a DESCRIBE; undefined when no stream has that name. */
  openPlayer(ctx: PlayerContext): RtspPlayer | undefined;
  /** Set when rtsp.username/password are configured. */
  readonly auth: AuthChecker | undefined;
}

export interface PublishRefused {
  status: 403;
  reason: string;
}

export interface ConnectionOptions {
  /** A request (start line to the end of its body) must arrive within this long of its first byte (ms). */
  headerTimeoutMs: number;
  /** Close a connection that sends nothing for this long (ms). */
  idleTimeoutMs: number;
  /** A play session with no request or RTCP for this long closes (ms); announced in seconds. */
  sessionTimeoutMs: number;
  /** The most a TCP player may have unsent before it is dropped (bytes). */
  maxSendBuffer: number;
  readerLimits: RtspReaderLimits;
}

export const DEFAULT_CONNECTION_OPTIONS: ConnectionOptions = {
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 70_000,
  sessionTimeoutMs: 60_000,
  maxSendBuffer: 4 * 1024 * 1024,
  readerLimits: DEFAULT_READER_LIMITS,
};

/** Where our own ffmpeg children publish: one-time paths, their unguessable name the credential. */
export const PUBLISH_PREFIX = '/_publish/';

/** The path of a request URL (absolute, or a bare path). */
export function pathOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return url.startsWith('/') ? url.split('?')[0] : undefined;
  }
}

/** ::ffff:10.0.0.1 → 10.0.0.1: UDP sockets and comparisons then use one form. */
export function plainAddress(a: string | undefined): string {
  if (!a) return '';
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a) ? a.slice(7) : a;
}
