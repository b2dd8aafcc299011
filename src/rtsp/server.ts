import { parseListen } from '../core/listen.js';
import { randomBytes } from 'node:crypto';
import { createServer, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { SourceError } from '../core/errors.js';
import { log as rootLog, type Logger } from '../core/log.js';
import { Owned } from '../core/owned.js';
import { LogThrottle } from '../core/log-throttle.js';
import { RtspServerConnection } from './server-connection.js';
import { DEFAULT_CONNECTION_OPTIONS, type ConnectionHost, type ConnectionOptions } from './connection-host.js';
import { RtspListenError, RtspProtocolError } from './errors.js';
import { PublishSlot } from './publish-slot.js';
import { AuthChecker, type Credentials } from './auth.js';
import type { PlayerContext, PlayerFactory, RtspPlayer } from './player.js';
import { publishRefusal } from './publish-rule.js';
import type { PublishRefused, RtspRefusalReason } from './connection-host.js';

export { PublishSlot } from './publish-slot.js';

export interface ListenAddress {
  /** undefined: every interface. */
  host: string | undefined;
  port: number;
}

/** core's parseListen, plus '' (127.0.0.1 on a free port, internal only) and a bare port. */
export function parseListenAddress(text: string): ListenAddress {
  const t = text.trim();
  if (t === '') return { host: '127.0.0.1', port: 0 };
  try {
    return parseListen(/^\d+$/.test(t) ? `:${t}` : t);
  } catch (e) {
    throw new RtspListenError(text, 'EINVAL', (e as Error).message);
  }
}

export interface RtspServerOptions {
  listen: string;
  connection?: Partial<ConnectionOptions>;
  /** rtsp.username/password: players (not ffmpeg's one-time publish paths) must present them. */
  auth?: Credentials;
  /** Makes the player of a DESCRIBE (src/outputs/rtsp.ts); without it players get 404. */
  players?: PlayerFactory;
  /**
   * An external publisher (ffmpeg, OBS, a camera that pushes) ANNOUNCEs to `/<stream name>`:
   * takes the slot (its owner from then on) or returns false for an unknown name (404).
   */
  publishers?: (name: string, slot: PublishSlot) => boolean;
  /**
   * Whether the stream of that name has configured sources (publishing into it then needs RTSP
   * credentials or allowPublish). Without it every stream counts as publisher-fed.
   */
  hasSources?: (name: string) => boolean;
  /** rtsp.allow_publish (see publish-rule.ts). */
  allowPublish?: boolean;
  /** rtsp.max_connections: players and external publishers at once (default 256). */
  maxConnections?: number;
  /** Called each time a bound closes a connection or an ANNOUNCE is forbidden, with the reason (for a metric). */
  onRefused?: (reason: RtspRefusalReason) => void;
  /**
   * Loopback connections beyond maxConnections are taken on probation (default true): they may
   * ask OPTIONS and must then ANNOUNCE into a one-time path or read with our marker. Tests turn it
   * off to see the refusal at accept from 127.0.0.1.
   */
  probationForLoopback?: boolean;
  /** How long a Digest nonce stays valid (default 60 s). */
  nonceTtlMs?: number;
}

export { RTSP_REFUSAL_REASONS, type RtspRefusalReason } from './connection-host.js';

export const DEFAULT_MAX_CONNECTIONS = 256;
/**
 * Loopback connections taken beyond rtsp.max_connections, each until its first request that is
 * not OPTIONS: our own ffmpeg children (publishers into one-time paths, transcodes reading a
 * stream) must never be refused, and at accept they are not yet known.
 */
const MAX_PROBATION = 32;
/** A connection without a session may make room for a new one once it has been quiet this long. */
const EVICT_AFTER_QUIET_MS = 1000;

const PUBLISH_PREFIX = '/_publish/';

/**
 * camrelay's RTSP server. Receives what ffmpeg children publish (ANNOUNCE/RECORD over TCP) into
 * one-time paths, and serves every stream to players (DESCRIBE/SETUP/PLAY over TCP interleaved
 * or UDP) at `/<stream>`. Owns the listening socket and every connection (closed with it; each
 * connection owns its player); publish slots belong to whoever asked for them, but a closing
 * server closes them too, with an error, as nothing can publish into them any more.
 */
export class RtspServer extends Owned implements ConnectionHost {
  readonly #address: ListenAddress;
  readonly #listenText: string;
  readonly #connOpts: ConnectionOptions;
  #server: Server;
  #connections = new Set<RtspServerConnection>();
  #slots = new Map<string, PublishSlot>();
  /** Slots of external publishers by path; owned by their streams, listed to replace them. */
  #external = new Map<string, PublishSlot>();
  readonly #publishers: RtspServerOptions['publishers'];
  #port: number | undefined;
  #log: Logger;
  #listening: Promise<void> | undefined;
  readonly auth: AuthChecker | undefined;
  readonly #players: PlayerFactory | undefined;
  readonly #hasSources: ((name: string) => boolean) | undefined;
  readonly #allowPublish: boolean | undefined;
  readonly #maxConnections: number;
  readonly #probationForLoopback: boolean;
  readonly #onRefused: ((reason: RtspRefusalReason) => void) | undefined;
  /** A flood of refused connections must not flood the log too. */
  readonly #refusedLog = new LogThrottle('RTSP connection refused: rtsp.max_connections reached');

  constructor(opts: RtspServerOptions) {
    const address = parseListenAddress(opts.listen);
    super('RtspServer');
    this.#address = address;
    this.#listenText = opts.listen.trim() || '127.0.0.1:0';
    const conn = { ...DEFAULT_CONNECTION_OPTIONS, ...opts.connection };
    // A player keeps its connection alive with keep-alives within the session timeout; the
    // connection's own silence limit must not cut it shorter.
    if (opts.connection?.idleTimeoutMs === undefined) conn.idleTimeoutMs = Math.max(conn.idleTimeoutMs, conn.sessionTimeoutMs + 10_000);
    this.#connOpts = conn;
    this.auth = opts.auth ? new AuthChecker(opts.auth, { nonceTtlMs: opts.nonceTtlMs }) : undefined;
    this.#players = opts.players;
    this.#publishers = opts.publishers;
    this.#hasSources = opts.hasSources;
    this.#allowPublish = opts.allowPublish;
    this.#maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#probationForLoopback = opts.probationForLoopback ?? true;
    this.#onRefused = opts.onRefused;
    this.#log = rootLog.child({ component: 'rtsp-server' });
    this.#server = createServer((socket) => this.#accept(socket));
    // Errors while binding go to listen()'s caller; this one is for a failing socket afterwards.
    this.#server.on('error', (e) => {
      if (this.#port !== undefined) this.#log.error({ err: e.message }, 'RTSP server socket error');
    });
  }

  listen(): Promise<void> {
    if (this.closed) return Promise.reject(new RtspListenError(this.#listenText, undefined, 'server is closed'));
    this.#listening ??= new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        this.#server.off('listening', onListening);
        const detail = e.code === 'EADDRINUSE' ? 'address already in use (EADDRINUSE)' : e.code === 'EACCES' ? 'permission denied (EACCES)' : e.message;
        reject(new RtspListenError(this.#listenText, e.code, detail));
      };
      const onListening = () => {
        this.#server.off('error', onError);
        if (this.closed) {
          reject(new RtspListenError(this.#listenText, undefined, 'server closed while starting'));
          return;
        }
        this.#port = (this.#server.address() as AddressInfo).port;
        this.#log.info({ address: this.loopbackAddress, listen: this.#listenText }, 'RTSP server listening');
        resolve();
      };
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      this.#server.listen({ host: this.#address.host, port: this.#address.port });
    });
    return this.#listening;
  }

  get port(): number {
    if (this.#port === undefined) throw new Error('RtspServer is not listening');
    return this.#port;
  }

  /** host:port a local ffmpeg reaches this server at. */
  get loopbackAddress(): string {
    const h = this.#address.host;
    const wildcard = h === undefined || h === '0.0.0.0' || h === '::' || h === '';
    const host = wildcard ? '127.0.0.1' : h;
    return `${isIPv6(host) ? `[${host}]` : host}:${this.port}`;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Reserves a one-time publish path; the slot is owned by the caller. */
  expectPublisher(label: string): PublishSlot {
    if (this.closed) throw new Error('RtspServer is closed');
    const path = PUBLISH_PREFIX + randomBytes(16).toString('hex');
    const slot = new PublishSlot(`rtsp://${this.loopbackAddress}${path}`, path, label);
    this.#slots.set(path, slot);
    slot.once('close', () => {
      if (this.#slots.get(path) === slot) this.#slots.delete(path);
    });
    return slot;
  }

  openPlayer(ctx: PlayerContext): RtspPlayer | undefined {
    if (this.closed) return undefined;
    return this.#players?.open(ctx);
  }

  claimPublishPath(path: string, conn: RtspServerConnection): PublishSlot | PublishRefused | undefined {
    const slot = this.#slots.get(path);
    if (slot) return slot.claim(conn) ? slot : undefined;
    return this.#externalPublish(path, conn);
  }

  refused(reason: RtspRefusalReason): void {
    this.#onRefused?.(reason);
  }

  #externalPublish(path: string, conn: RtspServerConnection): PublishSlot | PublishRefused | undefined {
    if (!this.#publishers || path.startsWith(PUBLISH_PREFIX)) return undefined;
    let name: string;
    try {
      name = decodeURIComponent(path.replace(/^\/+/, ''));
    } catch {
      return undefined;
    }
    if (!name || name.includes('/')) return undefined;
    // Decided before anything changes: a refused publisher leaves the stream's source and viewers as they were.
    const refused = publishRefusal({ hasSources: this.#hasSources?.(name) ?? false, authConfigured: this.auth !== undefined, allowPublish: this.#allowPublish });
    if (refused) return { status: 403, reason: refused };
    // A new publisher of the same name replaces the old one, which is closed first (DESIGN rule 5).
    this.#external.get(path)?.close(new SourceError('replaced by a new publisher'));
    const slot = new PublishSlot(`rtsp://${this.loopbackAddress}${path}`, path, `publisher of ${name}`);
    if (!this.#publishers(name, slot)) {
      slot.close();
      return undefined;
    }
    this.#external.set(path, slot);
    slot.once('close', () => {
      if (this.#external.get(path) === slot) this.#external.delete(path);
    });
    return slot.claim(conn) ? slot : undefined;
  }

  #accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    let probation = false;
    if (this.#countedConnections() >= this.#maxConnections) {
      // Room is made first by the oldest connection that holds no session and has said nothing
      // for a while: idle connections alone must not keep players out.
      const idle = this.#evictable();
      if (idle) {
        this.refused('max_connections');
        this.#log.info({ evicted: idle.remote, remote: socket.remoteAddress }, 'rtsp.max_connections reached: the oldest idle connection without a session made room');
        idle.close(new RtspProtocolError('TooManyConnections', 'rtsp.max_connections reached: closed to make room, as the oldest idle connection without a session'));
      } else {
        probation = this.#probationForLoopback && isLoopback(socket.remoteAddress) && this.#probationConnections() < MAX_PROBATION;
        if (!probation) {
          this.#refuse(socket);
          return;
        }
      }
    }
    const conn = new RtspServerConnection(socket, this, this.#connOpts, { probation });
    this.#connections.add(conn);
    conn.once('close', () => this.#connections.delete(conn));
  }

  /** Connections rtsp.max_connections counts: all but our own ffmpeg children's. */
  #countedConnections(): number {
    let n = 0;
    for (const c of this.#connections) if (!c.internal) n++;
    return n;
  }

  #evictable(): RtspServerConnection | undefined {
    const now = performance.now();
    // A Set iterates in insertion order: the first match is the oldest.
    for (const c of this.#connections) if (!c.internal && c.sessionless && now - c.lastInputAt >= EVICT_AFTER_QUIET_MS) return c;
    return undefined;
  }

  #probationConnections(): number {
    let n = 0;
    for (const c of this.#connections) if (c.onProbation) n++;
    return n;
  }

  #refuse(socket: Socket): void {
    socket.on('error', () => {});
    socket.destroy();
    this.refused('max_connections');
    this.#refusedLog.hit({ component: 'rtsp-server', remote: socket.remoteAddress, maxConnections: this.#maxConnections });
  }

  protected onClose(): Promise<void> {
    // Slots first, so that their owners learn the real reason rather than "publisher disconnected".
    for (const s of [...this.#slots.values()]) s.close(new SourceError('RTSP server closed'));
    this.#slots.clear();
    const conns = [...this.#connections];
    for (const c of conns) c.close();
    // A listen() still binding finishes first; then the socket (if any) is closed.
    const serverGone = (this.#listening ?? Promise.resolve()).then(
      () => undefined,
      () => undefined,
    ).then(
      () =>
        new Promise<void>((resolve) => {
          if (!this.#server.listening) return resolve();
          this.#server.close(() => resolve());
        }),
    );
    return Promise.all([serverGone, ...conns.map((c) => c.done)]).then(() => undefined);
  }
}

function isLoopback(address: string | undefined): boolean {
  const a = address ?? '';
  return a === '::1' || /^(::ffff:)?127\./i.test(a);
}
