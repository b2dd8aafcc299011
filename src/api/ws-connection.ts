// One signalling WebSocket (/api/ws?src=NAME): answers WebRTC offers with trickle ICE the way
// go2rtc does, and serves MSE on the socket itself (`mse`: an fMP4 viewer it owns, ended with it;
// go2rtc's player may run both at once). The socket is only the signalling channel: a session it opened belongs to the
// SessionTable from the answer on, and lives on after the socket closes (Home Assistant closes it
// as soon as it has the answer); only a socket that closes before the answer aborts the open.
import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { Owned } from '../core/owned.js';
import { CloseReason } from '../core/close-reason.js';
import { errorMessage as messageOf } from '../core/errors.js';
import { log, type Logger } from '../core/log.js';
import type { WebRtcSession } from '../outputs/webrtc/session.js';
import { countRefusal } from '../core/refusals.js';
import type { WebRtcContext } from './routes-webrtc.js';
import { openWebRtc } from './webrtc-open.js';
import { MessageError, answerMessage, candidateMessage, errorMessage, hlsMessage, mseMessage, parseMediaMessage, parseMessage, type Incoming } from './ws-messages.js';
import { openMse } from '../outputs/mse.js';
import type { Fmp4Viewer } from '../outputs/fmp4/viewer.js';
import type { MjpegHub, MjpegViewer } from '../outputs/mjpeg-hub.js';
import { closeCodeOf } from '../core/close-reason.js';
import { startMjpegOverWs } from './ws-mjpeg.js';
import type { HlsSessions } from '../outputs/hls/sessions.js';
import type { HlsSession } from '../outputs/hls/session.js';
import { masterPlaylist } from '../outputs/hls/playlist.js';
import { parseMseCodecs } from '../outputs/fmp4/codecs.js';
import { HLS_ANSWER_WAIT_MS } from './routes-hls.js';

/** Remote candidates held while no session can take them yet (before or during the open). */
export const MAX_BUFFERED_CANDIDATES = 64;
/** The answer to a message type camrelay does not serve (mp4, …), after "<type>: ". */
export const UNSUPPORTED = 'not supported by camrelay yet';
/** How long a closing handshake may take before the socket is cut. */
const CLOSE_GRACE_MS = 1000;

type Offer = Extract<Incoming, { kind: 'offer' }>;

let counter = 0;

export class WsConnection extends Owned {
  readonly id = `ws${++counter}`;
  readonly src: string;
  #ws: WebSocket;
  #log: Logger;
  #remoteAddr: string | undefined;
  #userAgent: string | undefined;
  /** The open in progress (at most one per socket), and its settling for done. */
  #opening: AbortController | undefined;
  #pendingOpen: Promise<void> = Promise.resolve();
  /** The session this socket answered last: where trickled candidates go. Not owned. */
  #session: WebRtcSession | undefined;
  #unsubscribe: (() => void)[] = [];
  #buffered: (string | null)[] = [];
  /** Remote candidates are applied one after another, in the order they came. */
  #applying: Promise<void> = Promise.resolve();
  #graceTimer: NodeJS.Timeout | undefined;
  /** api.idle_timeout: pings, and the cut of a socket that neither speaks nor answers them. */
  #idleTimer: NodeJS.Timeout | undefined;
  #lastHeard = performance.now();
  #socketClosed: Promise<void>;
  #closeCode = 1001;
  /** Ids of the sessions this socket opened, for its closing log line. */
  #opened: string[] = [];
  /**
   * Our own page asks (`&camrelay_session`) for the session id after the answer, to DELETE it on
   * pagehide; go2rtc clients (Home Assistant) never see this extra message.
   */
  #announceSession: boolean;
  /** The type of the message being handled: an error it causes starts with it (go2rtc's rule). */
  #type = 'ws';
  /** The MSE viewer this socket carries (owned: it ends with the socket). */
  #mse: Fmp4Viewer | undefined;
  /** The MJPEG viewer this socket carries (owned, likewise). */
  #mjpeg: MjpegViewer | undefined;
  /**
   * HLS sessions asked for on this socket and not yet answered: a socket that closes first takes
   * them with it. Once answered, a session is the HLS table's, as go2rtc's: it ends when its
   * playlist is no longer fetched, whatever the socket does.
   */
  #hlsOpening = new Set<HlsSession>();

  constructor(
    ws: WebSocket,
    req: IncomingMessage,
    url: URL,
    private readonly ctx: WebRtcContext & { mjpeg?: MjpegHub; hls?: HlsSessions },
    idleTimeoutMs: number,
  ) {
    super('WsConnection');
    this.#ws = ws;
    this.src = url.searchParams.get('src') ?? '';
    this.#announceSession = url.searchParams.has('camrelay_session');
    this.#remoteAddr = req.socket.remoteAddress;
    this.#userAgent = req.headers['user-agent'];
    this.#log = log.child({ ws: this.id, stream: this.src });
    this.#socketClosed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data: RawData) => {
      this.#lastHeard = performance.now();
      this.#type = 'ws';
      try {
        this.#onMessage(data);
      } catch (e) {
        this.#failed(this.#type, e);
      }
    });
    // Browsers and aiohttp answer pings by themselves: only a peer that is gone (or a socket held
    // open on purpose) stays silent. The WebRTC sessions it opened are not its to end.
    ws.on('pong', () => (this.#lastHeard = performance.now()));
    this.#idleTimer = setInterval(() => this.#checkIdle(idleTimeoutMs), Math.max(10, Math.floor(idleTimeoutMs / 2)));
    ws.on('close', (code: number, reason: Buffer) => {
      this.#log.debug({ code, reason: reason.toString() }, 'ws closed by peer');
      this.close();
    });
    // Oversized frames (maxPayload) and protocol errors arrive here; ws closes the socket itself.
    ws.on('error', (e: Error) => {
      this.#log.info({ err: e.message }, 'ws error');
      this.close(e);
    });
    this.#log.info({ remote: this.#remoteAddr, user_agent: this.#userAgent, dst: url.searchParams.get('dst') ?? undefined }, 'ws connected');
  }

  #checkIdle(idleTimeoutMs: number): void {
    if (this.closed) return;
    const silent = performance.now() - this.#lastHeard;
    if (silent >= idleTimeoutMs) {
      countRefusal('ws_idle');
      this.#log.info({ silent_ms: Math.round(silent), idle_timeout_ms: idleTimeoutMs }, 'ws closed: no message and no pong within api.idle_timeout');
      this.close(new Error('idle timeout'), 1001);
      return;
    }
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.ping();
  }

  #onMessage(data: RawData): void {
    if (this.closed) return;
    // go2rtc reads text and binary frames alike as JSON.
    const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8');
    let msg: Incoming;
    try {
      msg = parseMessage(text);
    } catch (e) {
      const err = e instanceof MessageError ? e : new MessageError('webrtc', messageOf(e), true);
      this.#sendError(err.prefix, err.message);
      if (err.fatal) this.close(new Error(err.message), 1007);
      return;
    }
    this.#type = msg.kind === 'candidate' ? 'webrtc/candidate' : msg.type;
    switch (msg.kind) {
      case 'offer':
        if (this.#opening) this.#sendError(msg.type, 'an offer is already being answered on this socket');
        else this.#pendingOpen = this.#answer(msg).catch((e: unknown) => this.#failed(msg.type, e));
        break;
      case 'candidate':
        this.#remoteCandidate(msg.candidate);
        break;
      case 'unknown': {
        const media = parseMediaMessage(text);
        if (media) {
          this.#type = media.type;
          if (media.type === 'mse') this.#startMse(media.codecs);
          else if (media.type === 'hls') this.#startHls(media.codecs);
          else this.#startMjpeg();
          break;
        }
        // go2rtc's player asks for MJPEG when an error starts with "mse", and closes its peer on
        // any error containing "webrtc/offer": this one names only the type it answers.
        this.#sendError(msg.type, UNSUPPORTED);
        break;
      }
    }
  }

  /**
   * go2rtc's `hls` (internal/hls/ws.go): a new HLS session of the stream in the same table as
   * GET /api/stream.m3u8 (same bounds, same 5 s rule), for the codecs the client listed (read as
   * for `mse`); the answer is the session's master playlist, once the muxer has named its codecs.
   */
  #startHls(codecs: string): void {
    const table = this.ctx.hls;
    const stream = this.src ? this.ctx.registry.get(this.src) : undefined;
    if (!table) return this.#sendError('hls', UNSUPPORTED);
    if (!stream) return this.#sendError('hls', 'stream not found');
    const s = table.open(stream, parseMseCodecs(codecs), { remoteAddr: this.#remoteAddr, userAgent: this.#userAgent });
    if (!s) {
      countRefusal('hls_sessions');
      return this.#sendError('hls', `too many HLS sessions (${table.maxPerStream} per stream, ${table.max} in all)`);
    }
    let reason: Error | undefined;
    s.once('close', (r?: Error) => {
      reason = r;
      this.#hlsOpening.delete(s);
    });
    this.#hlsOpening.add(s);
    this.#log.info({ hls_session: s.id, codecs }, 'ws hls session');
    void s.wait(() => s.mime !== undefined, HLS_ANSWER_WAIT_MS).then(() => {
      this.#hlsOpening.delete(s);
      if (this.closed) return void s.close(new CloseReason('client'));
      if (s.closed || s.mime === undefined) {
        s.close(new Error('no answer from the stream in time'));
        return this.#sendError('hls', reason?.message ?? 'no answer from the stream in time');
      }
      s.touch();
      this.#ws.send(hlsMessage(masterPlaylist(s.id, s.mime)));
    });
  }

  /** go2rtc's `mjpeg`: a viewer of the stream's shared MJPEG encoder (api/ws-mjpeg.ts). */
  #startMjpeg(): void {
    const hub = this.ctx.mjpeg;
    const stream = this.src ? this.ctx.registry.get(this.src) : undefined;
    if (!hub) {
      this.#sendError('mjpeg', UNSUPPORTED);
      return;
    }
    if (!stream) {
      this.#sendError('mjpeg', 'stream not found');
      return;
    }
    this.#mjpeg?.close();
    const viewer = startMjpegOverWs(this.#ws, stream, hub, { remoteAddr: this.#remoteAddr, userAgent: this.#userAgent });
    if (!viewer) return; // refused, and told so
    this.#mjpeg = viewer;
    viewer.once('close', (reason?: Error) => {
      if (this.#mjpeg === viewer) this.#mjpeg = undefined;
      // A socket too slow for the pictures is cut.
      if (!this.closed && closeCodeOf(reason) === 'slow_consumer') this.close(reason, 1008);
    });
  }

  /**
   * go2rtc's `mse`: a viewer of the stream's shared muxer. Its failure to start is the client's
   * `mse: …` error (the player then falls back to MJPEG); once it played, its end (dropped for
   * not reading, stream removed) ends the socket, so that go2rtc's player reconnects.
   */
  #startMse(codecs: string): void {
    const stream = this.src ? this.ctx.registry.get(this.src) : undefined;
    if (!stream) {
      this.#sendError('mse', 'stream not found');
      return;
    }
    // A second request on the socket is the same viewer starting over.
    const old = this.#mse;
    const keepSource = stream.hold();
    old?.close(new CloseReason('replaced'));
    const viewer = openMse(stream, this.#ws, codecs, mseMessage, { remoteAddr: this.#remoteAddr, userAgent: this.#userAgent });
    keepSource();
    this.#mse = viewer;
    this.#log.info({ viewer: viewer.id, codecs }, 'ws mse viewer');
    viewer.once('close', (reason?: Error) => {
      if (this.#mse === viewer) this.#mse = undefined;
      if (this.closed || (reason instanceof CloseReason && reason.code === 'replaced')) return;
      if (!viewer.answered) this.#sendError('mse', reason?.message ?? 'stream closed');
      else this.close(reason, 1001);
    });
  }

  async #answer(offer: Offer): Promise<void> {
    const p = offer.type;
    const stream = this.src ? this.ctx.registry.get(this.src) : undefined;
    if (!stream) {
      // go2rtc's words, and like go2rtc the socket stays open: the client may try again.
      this.#sendError(p, this.src ? 'stream not found' : 'missing ?src=<stream name> (publishing with ?dst= is not supported)');
      return;
    }
    // A new offer on the same socket is the same viewer starting over (DESIGN rule 5): its old
    // session is closed first, but the source it watched stays for the new one.
    const keepSource = stream.hold();
    this.#dropSession();
    const ac = new AbortController();
    this.#opening = ac;
    try {
      const opening = openWebRtc(this.ctx, {
        stream,
        sdp: offer.sdp,
        ...(offer.iceServers && { settings: { ...this.ctx.settings, iceServers: offer.iceServers } }),
        trickle: true,
        remoteAddr: this.#remoteAddr,
        userAgent: this.#userAgent,
        signal: ac.signal,
      });
      // The hold stays until the open is over (finally): the offer may first wait for a place.
      const opened = await opening;
      if (!opened) return;
      const { session, answer } = opened;
      this.#session = session;
      this.#opened.push(session.id);
      this.#ws.send(answerMessage(p, answer));
      if (this.#announceSession) this.#ws.send(JSON.stringify({ type: 'camrelay/session', value: session.id }));
      this.#log.info({ session: session.id, form: p, ice_servers: offer.iceServers?.length }, 'ws webrtc answered');
      this.#flushCandidates(session);
      // go2rtc sends each local candidate as it is found, and nothing at the end of gathering.
      this.#unsubscribe.push(
        session.onLocalCandidate((c) => {
          if (c && this.#ws.readyState === this.#ws.OPEN) this.#ws.send(candidateMessage(c.candidate));
        }),
      );
      const forget = () => {
        if (this.#session === session) this.#session = undefined;
      };
      session.once('close', forget);
      this.#unsubscribe.push(() => session.off('close', forget));
    } catch (e) {
      if (ac.signal.aborted || this.closed) {
        this.#log.debug({ err: messageOf(e) }, 'ws webrtc open abandoned: the socket closed before the answer');
        return;
      }
      this.#log.info({ err: messageOf(e) }, 'ws webrtc session not opened');
      // go2rtc keeps the socket after a failed offer; the client may try again.
      this.#sendError(p, messageOf(e));
    } finally {
      keepSource();
      if (this.#opening === ac) this.#opening = undefined;
    }
  }

  /** The last resort of a message handler: whatever it threw is the client's error message, not the process's. */
  #failed(prefix: string, e: unknown): void {
    this.#log.error({ err: messageOf(e), stack: e instanceof Error ? e.stack : undefined }, 'ws message handler failed');
    if (!this.closed) this.#sendError(prefix, `internal error: ${messageOf(e)}`);
  }

  #remoteCandidate(candidate: string | null): void {
    const session = this.#session;
    if (session && !this.#opening) {
      this.#apply(session, candidate, false);
      return;
    }
    // Before the answer (or before any offer, as go2rtc allows): held for the next session.
    if (this.#buffered.length >= MAX_BUFFERED_CANDIDATES) {
      this.#log.warn({ candidate }, `ws: more than ${MAX_BUFFERED_CANDIDATES} candidates before the answer; dropped`);
      return;
    }
    this.#buffered.push(candidate);
  }

  #flushCandidates(session: WebRtcSession): void {
    const held = this.#buffered;
    this.#buffered = [];
    for (const c of held) this.#apply(session, c, true);
  }

  #apply(session: WebRtcSession, candidate: string | null, buffered: boolean): void {
    this.#applying = this.#applying.then(async () => {
      try {
        // go2rtc passes the bare line (pion bundles everything on one transport): the first m-line's.
        await session.addRemoteCandidate(candidate === null ? null : { candidate, sdpMLineIndex: 0 });
        this.#log.debug({ session: session.id, candidate, buffered }, 'ws remote candidate applied');
      } catch (e) {
        // Like go2rtc, a candidate the peer cannot use (mDNS, another family) is no error for the client.
        this.#log.debug({ session: session.id, candidate, err: messageOf(e) }, 'ws remote candidate not applied');
      }
    });
  }

  #sendError(prefix: string, reason: string): void {
    this.#log.info({ error: `${prefix}: ${reason}` }, 'ws error sent');
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(errorMessage(prefix, reason));
  }

  /** Stops following the last session, and closes it: its viewer has started over. */
  #dropSession(): void {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    const s = this.#session;
    this.#session = undefined;
    if (s && !s.closed) s.close(new CloseReason('replaced'));
  }

  /** `code` is the WebSocket close code sent to the client (1001 = going away, server shutdown). */
  override close(reason?: Error, code = 1001): void {
    if (!this.closed) this.#closeCode = code;
    super.close(reason);
  }

  protected onClose(reason?: Error): Promise<void> {
    // A socket that goes before the answer takes its open with it; one that goes after does not.
    this.#opening?.abort();
    clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    this.#session = undefined;
    this.#buffered = [];
    this.#mse?.close(new CloseReason('client'));
    this.#mse = undefined;
    this.#mjpeg?.close();
    this.#mjpeg = undefined;
    for (const s of [...this.#hlsOpening]) s.close(new CloseReason('viewer_left'));
    this.#hlsOpening.clear();
    const ws = this.#ws;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
      // A close reason is limited to 123 bytes: ASCII only, so that characters count as bytes.
      ws.close(this.#closeCode, (reason?.message ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 120));
      this.#graceTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    }
    this.#log.info({ reason: reason?.message, sessions: this.#opened }, 'ws session ended');
    const socketGone = this.#socketClosed.then(() => {
      clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
      ws.removeAllListeners('message');
    });
    return Promise.all([socketGone, this.#pendingOpen.catch(() => undefined)]).then(() => undefined);
  }
}
