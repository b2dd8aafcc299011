import { SourceError, errorMessage, isRefusalStatus } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ALL_CODECS, describeTrack, type Frame, type Kind, type MediaRequest, type Track } from '../core/media.js';
import { Owned } from '../core/owned.js';
import { RtspBackchannel } from './backchannel.js';
import { RtspClientConnection, type ClientConnectionOptions } from './client-connection.js';
import { CameraUdpPair } from './camera-udp-pair.js';
import { RtspProtocolError } from './errors.js';
import { DEFAULT_READER_LIMITS, type RtspResponse } from './message.js';
import { formatsOf, RtpReceiver, trackFromMedia, unsupportedReason } from './receiver.js';
import { parseSdp, resolveControl, type SdpMedia, type SdpSession } from './sdp.js';
import { parseTransport } from './transport.js';
import { parseCameraUrl, redirectTarget, type CameraUrl } from './url.js';

// The RTSP client (RFC 2326 as cameras speak it): OPTIONS, DESCRIBE, SETUP per wanted track, PLAY,
// then keep-alives until close() sends TEARDOWN. RTP comes interleaved on the TCP connection, or
// over UDP with `#transport=udp`. Only what a viewer wants is set up, and with `#backchannel=1`
// the camera's ONVIF audio backchannel (RTP we send to it, over TCP only).

/** ONVIF Streaming Specification 5.3: the feature tag that makes a camera describe its backchannel. */
export const BACKCHANNEL_REQUIRE = 'www.onvif.org/ver20/backchannel';

/** Backchannel codecs camrelay can make of a viewer's microphone (src/outputs/talk). */
const BACKCHANNEL_CODECS: readonly string[] = ['PCMA', 'PCMU', 'OPUS', 'MPEG4-GENERIC', 'AAC']; // AAC's SDP name, and its alias

export interface RtspClientOptions extends ClientConnectionOptions {
  /** No RTP/RTCP for this long after PLAY: the camera is dead. */
  readTimeoutMs: number;
  maxRedirects: number;
  /** Keep-alives go this long before the session timeout the camera announced (at most half of it). */
  keepAliveMarginMs: number;
}

export const DEFAULT_RTSP_CLIENT_OPTIONS: RtspClientOptions = {
  connectTimeoutMs: 5000,
  requestTimeoutMs: 5000,
  readTimeoutMs: 5000,
  teardownGraceMs: 300,
  maxRedirects: 3,
  keepAliveMarginMs: 5000,
  userAgent: 'camrelay',
  readerLimits: DEFAULT_READER_LIMITS,
};

/** RFC 2326 12.37: the session timeout when the camera announces none. */
const DEFAULT_SESSION_TIMEOUT_S = 60;

interface Route {
  receiver: RtpReceiver;
  rtcp: boolean;
}

interface Chosen {
  media: SdpMedia;
  track: Track;
  url: string;
}

/** What DESCRIBE learnt, and whether the camera took the backchannel feature tag. */
interface Described {
  conn: RtspClientConnection;
  sdp: SdpSession;
  base: string;
  backchannel: boolean;
}

function statusError(method: string, res: RtspResponse): SourceError {
  // 401/403/404 reach waiting viewers at once (fail fast); 503 and the like mean "busy, try later".
  return new SourceError(`${method}: ${res.status} ${res.reason}`.trim(), false, isRefusalStatus(res.status));
}

function isRedirect(res: RtspResponse): boolean {
  return res.status >= 300 && res.status < 400 && res.status !== 304;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Emits 'frame' (Frame) for the tracks set up, and 'close' (SourceError?) once: with an error
 * when the camera failed (closed, stalled, broke the protocol), without one after close().
 */
export class RtspClient extends Owned {
  readonly target: CameraUrl;
  readonly opts: RtspClientOptions;
  #conn: RtspClientConnection | undefined;
  /** Every connection made (redirects make more than one), until each is gone. */
  #conns = new Set<RtspClientConnection>();
  #udp = new Set<CameraUdpPair>();
  #routes = new Map<number, Route>();
  #tracks: Track[] = [];
  #publicMethods = new Set<string>();
  #sessionTimeoutS = DEFAULT_SESSION_TIMEOUT_S;
  #keepAliveTimer: NodeJS.Timeout | undefined;
  #readTimer: NodeJS.Timeout | undefined;
  #lastData = 0;
  #playing = false;
  #unknownChannels = new Set<number>();
  /** The backchannel's interleaved channels: data the camera sends there is dropped silently. */
  #quietChannels = new Set<number>();
  #closeReason: Error | undefined;
  /** A UDP pair being bound: close() must release it too once it exists. */
  #opening: Promise<CameraUdpPair> | undefined;
  #backchannel: RtspBackchannel | undefined;

  constructor(
    url: string,
    opts: Partial<RtspClientOptions>,
    private readonly log: Logger,
  ) {
    // Parsed before super(): a bad URL throws without counting a live object.
    const target = parseCameraUrl(url);
    super('RtspClient');
    this.target = target;
    const t = target.timeoutMs;
    this.opts = { ...DEFAULT_RTSP_CLIENT_OPTIONS, ...(t ? { readTimeoutMs: t, requestTimeoutMs: t } : {}), ...opts };
  }

  get tracks(): readonly Track[] {
    return this.#tracks;
  }
  get transport(): 'tcp' | 'udp' {
    return this.target.transport;
  }
  get remoteAddress(): string | undefined {
    return this.#conn?.remoteAddress;
  }
  /** The camera's backchannel once playing, when `#backchannel=1` found and set one up. */
  get backchannel(): RtspBackchannel | undefined {
    return this.#playing && !this.closed ? this.#backchannel : undefined;
  }

  /**
   * Connects, describes, sets up the tracks `want` asks for (one per kind) and plays. Resolves
   * with those tracks once PLAY is answered 200. Rejects with a SourceError naming the step that
   * failed; the client is then closed. Aborting `signal` closes the client and rejects.
   */
  async play(signal: AbortSignal, want: MediaRequest): Promise<Track[]> {
    if (this.closed || signal.aborted) throw new SourceError('source stopped before it started');
    const onAbort = () => this.close();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { conn, sdp, base, backchannel } = await this.#describe();
      const back = backchannel ? this.#chooseBackchannel(sdp, base) : undefined;
      const chosen = this.#choose(sdp, base, want, back !== undefined);
      // PLAY, keep-alives and TEARDOWN name the whole session (RFC 2326 C.1.1), not a track.
      const aggregate = sdp.control && /^rtsps?:\/\//i.test(sdp.control) ? sdp.control : resolveControl(base, sdp.control);
      for (let i = 0; i < chosen.length; i++) await this.#setup(conn, chosen[i]!, i, aggregate);
      if (back) await this.#setupBackchannel(conn, back, chosen.length, aggregate);
      // A talker alone whose camera would not set up the backchannel has no session to play.
      if (chosen.length === 0 && !this.#backchannel) throw new SourceError('camera refused the backchannel, the only thing asked of it');
      // ONVIF asks for the feature tag on the requests that set up and start it. Range is left
      // out then: a live session has no position, and gst-rtsp-server answers a seek of a media
      // holding a backchannel with 503.
      const res = await conn.request('PLAY', aggregate, this.#backchannel ? { Require: BACKCHANNEL_REQUIRE } : { Range: 'npt=0.000-' });
      if (res.status !== 200) throw statusError('PLAY', res);
      this.#check();
      this.#tracks = chosen.map((c) => c.track);
      this.#started(conn, aggregate);
      const talk = this.#backchannel && describeTrack({ kind: 'audio', codec: this.#backchannel.codec });
      this.log.info({ tracks: this.#tracks.map(describeTrack), transport: this.transport, ...(talk ? { backchannel: talk } : {}) }, 'camera playing');
      return this.#tracks;
    } catch (e) {
      // Closed from outside (abort, owner) while a step was pending: that, not the step, is why.
      const stopped = this.closed && this.#closeReason === undefined;
      const err = stopped ? new SourceError('source stopped before it started') : e instanceof SourceError ? e : new SourceError(errorMessage(e));
      this.close(err);
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Throws when the client was closed while an await was pending. */
  #check(): void {
    if (this.closed) throw new SourceError('source stopped before it started');
  }

  #connect(target: CameraUrl): RtspClientConnection {
    const conn = new RtspClientConnection(target, this.opts, this.log);
    this.#conns.add(conn);
    this.#conn = conn;
    conn.once('close', (err?: Error) => {
      this.#conns.delete(conn);
      // While playing, the current connection failing ends the client. During play() the pending
      // step fails with the reason instead (it names the step); a replaced one (redirect) is no loss.
      if (this.#conn === conn && this.#playing && err) this.close(err instanceof SourceError ? err : new SourceError(err.message));
    });
    conn.on('interleaved', (channel: number, payload: Buffer) => this.#interleaved(channel, payload));
    return conn;
  }

  /** OPTIONS and DESCRIBE, following redirects. */
  async #describe(): Promise<Described> {
    let target = this.target;
    let backchannel = target.backchannel;
    for (let redirects = 0; ; redirects++) {
      const conn = this.#connect(target);
      await conn.connected;
      this.#check();
      const options = await conn.request('OPTIONS', target.requestUrl);
      this.#check();
      let res = options;
      if (!isRedirect(options)) {
        // Some cameras answer OPTIONS badly but play fine: only DESCRIBE's answer decides.
        this.#publicMethods = new Set((options.headers.get('public') ?? '').split(',').map((m) => m.trim().toUpperCase()).filter(Boolean));
        res = await conn.request('DESCRIBE', target.requestUrl, { Accept: 'application/sdp', ...(backchannel ? { Require: BACKCHANNEL_REQUIRE } : {}) });
        this.#check();
        if (backchannel && res.status !== 200 && !isRedirect(res) && !conn.closed) {
          // 551 Option not supported is the ONVIF answer; cameras say it in other words too. The
          // video matters more than the talking: ask again without the tag, as go2rtc does.
          this.log.info({ status: res.status, reason: res.reason, unsupported: res.headers.get('unsupported') }, 'camera refused the ONVIF backchannel; describing without it');
          backchannel = false;
          res = await conn.request('DESCRIBE', target.requestUrl, { Accept: 'application/sdp' });
          this.#check();
        }
      }
      const method = res === options ? 'OPTIONS' : 'DESCRIBE';
      if (isRedirect(res)) {
        const location = res.headers.get('location');
        if (!location) throw new SourceError(`${method}: ${res.status} redirect without a Location`);
        if (redirects >= this.opts.maxRedirects) throw new SourceError(`${method}: too many redirects (more than ${this.opts.maxRedirects})`);
        const next = redirectTarget(target, location);
        this.log.info({ status: res.status, to: next.requestUrl }, 'camera redirects');
        this.#conn = undefined;
        conn.close();
        target = next;
        continue;
      }
      if (res.status !== 200) throw statusError('DESCRIBE', res);
      const type = res.headers.get('content-type');
      if (type && !/^application\/sdp\b/i.test(type)) throw new SourceError(`DESCRIBE: answer is ${type.slice(0, 60)}, not SDP`);
      if (res.body.length === 0) throw new SourceError('DESCRIBE: empty answer, no SDP');
      let sdp: SdpSession;
      try {
        sdp = parseSdp(res.body.toString('utf8'));
      } catch (e) {
        throw new SourceError(`DESCRIBE: bad SDP: ${errorMessage(e)}`);
      }
      const cb = res.headers.get('content-base') ?? res.headers.get('content-location') ?? target.requestUrl;
      // A session-level absolute control URL is the base for the media ones.
      const base = sdp.control && /^rtsps?:\/\//i.test(sdp.control) ? sdp.control : cb;
      return { conn, sdp, base, backchannel };
    }
  }

  /**
   * The backchannel: the first audio section the camera marks sendonly (ONVIF: sendonly from the
   * client's side, the camera receives) in a codec a microphone can be turned into.
   */
  #chooseBackchannel(sdp: SdpSession, base: string): Chosen | undefined {
    if (this.transport === 'udp') {
      this.log.warn('#backchannel=1 needs RTP over TCP; #transport=udp sets up no backchannel');
      return undefined;
    }
    for (const section of sdp.media) {
      if (section.kind !== 'audio' || section.direction !== 'sendonly') continue;
      const formats = formatsOf(section);
      const m = formats.find((f) => unsupportedReason(f) === undefined && BACKCHANNEL_CODECS.includes(f.codec ?? ''));
      if (m) return { media: m, track: trackFromMedia(m)!, url: resolveControl(base, m.control) };
      this.log.warn({ codecs: formats.map((f) => f.codec ?? f.payloadType) }, 'camera backchannel in a codec camrelay cannot make of a microphone (it makes PCMA, PCMU, Opus, AAC); not set up');
      return undefined;
    }
    this.log.info('camera describes no backchannel (no sendonly audio media) though #backchannel=1 asked for one');
    return undefined;
  }

  async #setupBackchannel(conn: RtspClientConnection, c: Chosen, index: number, aggregate: string): Promise<void> {
    const asked: [number, number] = [index * 2, index * 2 + 1];
    const res = await conn.request('SETUP', c.url, { Transport: `RTP/AVP/TCP;unicast;interleaved=${asked[0]}-${asked[1]}`, Require: BACKCHANNEL_REQUIRE });
    this.#check();
    if (res.status !== 200) {
      // Some cameras allow one backchannel session at a time: watching matters more than talking.
      this.log.warn({ status: res.status, reason: res.reason }, 'camera refused the backchannel SETUP; playing without it');
      return;
    }
    try {
      this.#takeSession(conn, res, aggregate);
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'camera answered the backchannel SETUP without a usable session; playing without it');
      return;
    }
    const answered = parseTransport(res.headers.get('transport') ?? '')[0];
    if (answered && !answered.tcp && !answered.interleaved) {
      this.log.warn({ transport: res.headers.get('transport') }, 'camera answered the backchannel SETUP with a transport other than TCP interleaved; not used');
      return;
    }
    const channels = answered?.interleaved ?? asked;
    this.#backchannel = new RtspBackchannel(conn, channels[0], c.media.payloadType, c.track.codec);
    // What the camera sends on them (RTCP receiver reports of what we send) is expected, not noise.
    this.#quietChannels.add(channels[0]);
    this.#quietChannels.add(channels[1]);
  }

  /**
   * One track per kind: the first the camera lists that a viewer wants and camrelay carries. In a
   * media section listing several payload types, the first of those that qualifies is used. A
   * kind some viewer wants in a codec the camera does not have still gets the camera's track of
   * that kind: what a transcode needs, and what tells the viewer which codec it cannot take.
   */
  #choose(sdp: SdpSession, base: string, want: MediaRequest, backchannel: boolean): Chosen[] {
    const chosen: Chosen[] = [];
    const taken = new Set<Kind>();
    const used = new Set<SdpMedia>();
    const any: MediaRequest = {};
    for (const k of ['video', 'audio'] as const) if (want[k]?.length) any[k] = [...ALL_CODECS[k]];
    for (const w of [want, any]) {
      for (const section of sdp.media) {
        if (used.has(section)) continue;
        const formats = formatsOf(section);
        const m = formats.find((f) => this.#skipReason(f, w, taken) === undefined);
        if (!m) continue;
        if (formats.length > 1) this.log.debug({ payloadType: m.payloadType, codec: m.codec, listed: section.payloadTypes }, 'media section lists several payload types; using the first camrelay carries');
        const track = trackFromMedia(m)!;
        taken.add(track.kind);
        used.add(section);
        chosen.push({ media: m, track, url: resolveControl(base, m.control) });
      }
    }
    for (const section of sdp.media) {
      if (used.has(section)) continue;
      const formats = formatsOf(section);
      const why = this.#skipReason(section, want, taken);
      // Media of a kind camrelay never carries (vendor metadata, ONVIF data) is expected noise.
      const known = section.kind === 'video' || section.kind === 'audio';
      const media = formats.map((f) => `${f.kind}:${f.codec ?? (f.payloadType >= 0 ? f.payloadType : section.formats.join(' ').slice(0, 40))}`).join(', ');
      this.log[known ? 'info' : 'debug']({ media, why }, 'not setting up a track');
    }
    // A talker alone asks for nothing to receive: the backchannel is then the whole session.
    if (chosen.length === 0 && !(backchannel && !want.video?.length && !want.audio?.length)) {
      const offered = sdp.media.flatMap(formatsOf).map((m) => `${m.kind}:${m.codec ?? (m.payloadType >= 0 ? m.payloadType : m.formats.join(' ').slice(0, 40))}`).join(', ') || 'no media';
      const wanted = (['video', 'audio'] as const).flatMap((k) => (want[k] ?? []).map((c) => `${k}:${c}`)).join(', ') || 'nothing';
      throw new SourceError(`camera offers no track the viewers can use (offered ${offered}; wanted ${wanted})`, true);
    }
    return chosen;
  }

  #skipReason(m: SdpMedia, want: MediaRequest, taken: Set<Kind>): string | undefined {
    const unsupported = unsupportedReason(m);
    if (unsupported) return unsupported;
    const track = trackFromMedia(m)!;
    // ONVIF marks its audio backchannel (camrelay → camera) sendonly; that is not a camera track.
    if (m.direction === 'inactive' || (m.direction === 'sendonly' && m.kind === 'audio')) return `direction ${m.direction}`;
    if (this.target.media && !this.target.media.has(track.kind)) return `#media leaves ${track.kind} out`;
    if (!want[track.kind]?.includes(track.codec.name)) return 'no viewer wants it';
    if (taken.has(track.kind)) return `another ${track.kind} track is already set up`;
    return undefined;
  }

  async #setup(conn: RtspClientConnection, c: Chosen, index: number, aggregate: string): Promise<void> {
    const udp = this.transport === 'udp';
    let pair: CameraUdpPair | undefined;
    if (udp) {
      const opening = CameraUdpPair.open(conn.localAddress ?? '0.0.0.0', this.log);
      this.#opening = opening;
      try {
        pair = await opening;
      } finally {
        this.#opening = undefined;
      }
      // Closed while binding: onClose took the pair over (it closes it and waits for it).
      this.#check();
      this.#udp.add(pair);
      pair.once('close', () => this.#udp.delete(pair!));
    }
    const asked: [number, number] = [index * 2, index * 2 + 1];
    const transport = pair ? `RTP/AVP;unicast;client_port=${pair.rtpPort}-${pair.rtcpPort}` : `RTP/AVP/TCP;unicast;interleaved=${asked[0]}-${asked[1]}`;
    const res = await conn.request('SETUP', c.url, { Transport: transport });
    this.#check();
    if (res.status !== 200) throw statusError('SETUP', res);
    this.#takeSession(conn, res, aggregate);
    const answered = parseTransport(res.headers.get('transport') ?? '')[0];
    const receiver = new RtpReceiver(c.track, c.media.payloadType, (f) => this.#frame(f), this.log.child({ track: describeTrack(c.track) }));
    if (pair) {
      if (answered?.tcp || answered?.interleaved) throw new SourceError(`SETUP: asked for UDP, the camera answered ${JSON.stringify(answered.protocol)} interleaved`);
      const source = conn.remoteAddress;
      if (!source) throw new SourceError('SETUP: camera address unknown');
      pair.listen(source, (kind, msg) => {
        this.#lastData = Date.now();
        if (kind === 'rtp') this.#push(receiver, msg);
      });
      return;
    }
    // Cameras may pick other channels than asked; an answer without any keeps ours.
    if (answered && !answered.tcp && !answered.interleaved) throw new SourceError(`SETUP: asked for TCP interleaved, the camera answered ${JSON.stringify(res.headers.get('transport'))}`);
    const channels = answered?.interleaved ?? asked;
    this.#routes.set(channels[0], { receiver, rtcp: false });
    this.#routes.set(channels[1], { receiver, rtcp: true });
  }

  /** The session a SETUP answer names (the first one's timeout sets the keep-alives). */
  #takeSession(conn: RtspClientConnection, res: RtspResponse, aggregate: string): void {
    const session = res.headers.get('session');
    if (!session) throw new SourceError('SETUP: answer without a Session header');
    const [id, ...params] = session.split(';').map((s) => s.trim());
    if (!id) throw new SourceError(`SETUP: bad Session header ${JSON.stringify(session.slice(0, 60))}`);
    if (!conn.session) {
      conn.session = id;
      const timeout = params.map((p) => /^timeout\s*=\s*(\d+)$/i.exec(p)?.[1]).find((x) => x !== undefined);
      if (timeout !== undefined && Number(timeout) > 0) this.#sessionTimeoutS = Number(timeout);
    }
    // From here on the camera holds a session for us: closing must tear it down.
    conn.teardownUrl = aggregate;
  }

  #started(conn: RtspClientConnection, url: string): void {
    if (conn.closed) throw conn.closeReason ?? new SourceError('source stopped before it started');
    this.#playing = true;
    this.#lastData = Date.now();
    // A session that only talks receives no RTP: the keep-alive's answer is its sign of life.
    const receives = this.#tracks.length > 0;
    if (receives) this.#armReadTimer(this.opts.readTimeoutMs);
    const timeoutMs = this.#sessionTimeoutS * 1000;
    const every = Math.max(500, timeoutMs - Math.min(this.opts.keepAliveMarginMs, timeoutMs / 2));
    const method = this.#publicMethods.has('GET_PARAMETER') ? 'GET_PARAMETER' : 'OPTIONS';
    this.#keepAliveTimer = setInterval(() => {
      conn.request(method, url).then(
        (res) => {
          if (res.status === 454) this.close(new SourceError(`camera dropped the session (${method} keep-alive answered 454)`));
          else if (res.status !== 200) this.log.debug({ method, status: res.status }, 'keep-alive answered with an error; ignored');
        },
        (e: unknown) => {
          if (!receives) this.close(new SourceError(`camera stopped answering (${method} keep-alive: ${errorMessage(e)})`));
          else this.log.debug({ method, err: errorMessage(e) }, 'keep-alive failed');
        },
      );
    }, every);
    this.log.debug({ method, everyMs: every, sessionTimeoutS: this.#sessionTimeoutS }, 'keep-alive');
  }

  #armReadTimer(ms: number): void {
    this.#readTimer = setTimeout(() => {
      const idle = Date.now() - this.#lastData;
      if (idle >= this.opts.readTimeoutMs) this.close(new SourceError(`camera sent nothing for ${seconds(this.opts.readTimeoutMs)}`));
      else this.#armReadTimer(this.opts.readTimeoutMs - idle);
    }, ms);
  }

  #interleaved(channel: number, payload: Buffer): void {
    if (this.closed) return;
    this.#lastData = Date.now();
    const route = this.#routes.get(channel);
    if (!route) {
      if (this.#quietChannels.has(channel)) return;
      // One warning per channel: a camera that sends it keeps sending it.
      if (!this.#unknownChannels.has(channel)) {
        this.#unknownChannels.add(channel);
        const err = new RtspProtocolError('ChannelNotSetUp', `interleaved data on channel ${channel}`);
        this.log.warn({ err: err.message, errName: err.name }, 'dropped RTP data');
      }
      return;
    }
    if (!route.rtcp) this.#push(route.receiver, payload);
  }

  #push(receiver: RtpReceiver, packet: Buffer): void {
    try {
      receiver.push(packet);
    } catch (e) {
      // Named RTP errors are logged and dropped inside the receiver; anything else is a bug here.
      this.log.error({ err: errorMessage(e) }, 'RTP handling failed');
      this.close(new SourceError(`RTP handling failed: ${errorMessage(e)}`));
    }
  }

  #frame(f: Frame): void {
    if (this.closed || !this.#playing) return;
    this.emit('frame', f);
  }

  protected onClose(reason?: Error): Promise<void> {
    this.#closeReason = reason;
    clearInterval(this.#keepAliveTimer);
    clearTimeout(this.#readTimer);
    this.#routes.clear();
    const conns = [...this.#conns];
    const udp = [...this.#udp];
    for (const c of conns) c.close();
    for (const u of udp) u.close();
    this.#conn = undefined;
    const late = this.#opening?.then(
      (p) => {
        p.close();
        return p.done;
      },
      () => undefined,
    );
    return Promise.all([...[...conns, ...udp].map((o) => o.done), late]).then(() => undefined);
  }
}
