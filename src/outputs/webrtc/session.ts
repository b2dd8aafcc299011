// One WebRTC viewer: a consumer of a stream that answers the viewer's offer with send-only video
// in the stream's codec when the offer takes it (H.264, H.265), and audio when both sides have a
// codec in common, and sends the stream's frames as RTP.
// Liveness is ours, not the library's (DESIGN.md): connect timeout, disconnect timeout on inbound
// silence, and an explicit close when the connection reports disconnected/failed/closed.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Owned } from '../../core/owned.js';
import { CloseReason, closeCodeOf, type CloseCode } from '../../core/close-reason.js';
import { log, type Logger } from '../../core/log.js';
import { ALL_CODECS, describeTrack, type Codec, type Frame, type MediaRequest, type Track } from '../../core/media.js';
import { replayCatchUp, type CatchUpSource, type Consumer, type ConsumerInfo } from '../../core/consumer.js';
import { KeyframeGate } from '../../core/delivery-gate.js';
import { CODECS } from '../../codecs/table.js';
import { NO_HEAD, type RtpPayload } from '../../rtp/payload.js';
import { RtpTimeline } from '../../rtp/timeline.js';
import type { IceCandidateInit, PeerState, SendCodec, SendTrack, WebRtcBackend, WebRtcPeer, RtpOut } from './backend.js';
import { OfferError, chooseAudio, chooseMic, chooseVideo, parseOffer, type Offer, type OfferCodec } from './offer.js';
import { NoBackchannelError, TalkBusyError, type Talk } from '../../core/talk.js';
import type { Backchannel } from '../../core/backchannel.js';
import { countRefusal } from '../../core/refusals.js';
import { micConversionError } from '../talk/mic-converter.js';
import { MicLane } from './mic-lane.js';
import type { WebRtcSettings } from './settings.js';

export interface SessionMeta {
  remoteAddr?: string;
  userAgent?: string;
  /** Aborting it while open() runs closes the session (the viewer left before the answer). */
  signal?: AbortSignal;
  /**
   * Return the answer without waiting for candidate gathering; local candidates then come
   * through onLocalCandidate() (WebSocket signalling). Default: wait, for one-shot HTTP.
   */
  trickle?: boolean;
}

export interface AttachableStream extends CatchUpSource {
  attach(c: Consumer): Promise<Track[]>;
  /** The running source's backchannel, if any (a camera's ONVIF backchannel). */
  readonly backchannel?: Backchannel;
  /** Lends the backchannel to an attached consumer; throws NoBackchannelError or TalkBusyError. */
  startTalking?(c: Consumer): Talk;
  /** Where each kind of a consumer comes from: `auto` for the stream's own transcode. */
  bindingOf?(c: Consumer): ReadonlyMap<string, { auto: boolean }>;
  /** Every track the stream has, to say what it offers when none fits the viewer. */
  readonly tracks?: readonly Track[];
  name: string;
}

/** The close of a session whose peer connection reported one of these states. */
const PEER_CLOSE = { disconnected: 'peer_disconnected', failed: 'peer_failed', closed: 'peer_closed' } as const;

/** Packets the library may hold unsent before the viewer counts as unable to keep up (DESIGN rule 7). */
const MAX_PENDING_WRITES = 2048;

/** Per viewer and kind: the RTP header fields that are this viewer's own. */
class RtpLane {
  #timeline: RtpTimeline;
  /** The lane's codec's packetizer, from its table entry (payloads made once per frame, shared). */
  readonly packetize: (frame: Frame) => readonly RtpPayload[];
  #out: RtpOut = { head: NO_HEAD, body: NO_HEAD, marker: false, sequenceNumber: 0, timestamp: 0 };
  packets = 0;
  bytes = 0;

  constructor(
    readonly out: SendTrack,
    readonly codec: Pick<Codec, 'name' | 'clockRate'>,
    readonly description: string,
  ) {
    this.#timeline = new RtpTimeline(codec.clockRate);
    this.packetize = CODECS[codec.name].packetize;
  }

  accepts(t: Track): boolean {
    return t.codec.name === this.codec.name && t.codec.clockRate === this.codec.clockRate;
  }

  send(frame: Frame, payloads: readonly RtpPayload[]): void {
    // The timeline keeps numbering continuous when a reconnect brings a new source.
    const timestamp = this.#timeline.timestamp(frame);
    // One object for every packet of this lane: write() never keeps it (SendTrack's contract).
    const out = this.#out;
    out.timestamp = timestamp;
    for (const p of payloads) {
      out.head = p.head;
      out.body = p.body;
      out.marker = p.marker;
      out.sequenceNumber = this.#timeline.nextSequence();
      this.out.write(out);
      this.packets++;
      this.bytes += 12 + p.head.length + p.body.length;
    }
  }
}

/** Events: 'connected' once ICE and DTLS are done (the connecting-per-client bound lets go then); 'close'. */
export class WebRtcSession extends Owned implements Consumer {
  readonly id = randomBytes(12).toString('base64url');
  readonly request: MediaRequest;
  /** Why the session ended, for logs and the API; undefined while open. */
  closeReason: string | undefined;
  /** The same as a code, for metrics; undefined while open. */
  closeCode: CloseCode | undefined;
  readonly createdAt = Date.now();
  #peer: WebRtcPeer;
  #video: RtpLane | undefined;
  #audio: RtpLane | undefined;
  #connected = false;
  /** Frames before the connection came up were dropped: video starts at the next keyframe. */
  #videoGate = new KeyframeGate();
  #lastInbound = 0;
  #connectTimer: NodeJS.Timeout | undefined;
  #disconnectTimer: NodeJS.Timeout | undefined;
  #log: Logger;
  /** Local candidates so far (null = gathering done), replayed to late listeners. */
  #localCandidates: (IceCandidateInit | null)[] = [];
  #candidateListeners = new Set<(c: IceCandidateInit | null) => void>();
  #stream: AttachableStream | undefined;
  #answering = false;
  /** The viewer's microphone to the camera, while it talks. */
  #mic: MicLane | undefined;
  /** Why an offer with a microphone talks to nobody, for the API. */
  #notTalking: string | undefined;
  /** The kinds this viewer gets from the stream's automatic transcode, once answered (the answer says them). */
  transcoded: readonly string[] = [];

  private constructor(
    private readonly offer: Offer,
    private readonly offerSdp: string,
    readonly streamName: string,
    private readonly settings: WebRtcSettings,
    private readonly meta: SessionMeta,
    backend: WebRtcBackend,
  ) {
    super('WebRtcSession');
    // A talker alone receives nothing, but the camera session it may start must carry the
    // camera's tracks for the viewers who come next: it asks for every codec, and sends nothing.
    this.request = this.#talkOnly ? { video: [...ALL_CODECS.video], audio: [...ALL_CODECS.audio] } : offer.request;
    this.#log = log.child({ stream: streamName, session: this.id });
    this.#peer = backend.createPeer(settings);
    this.#peer.on('state', (s: PeerState) => this.#onState(s));
    this.#peer.on('activity', () => {
      this.#lastInbound = performance.now();
    });
    this.#peer.on('candidate', (c: IceCandidateInit | null) => {
      this.#localCandidates.push(c);
      for (const l of this.#candidateListeners) l(c);
    });
  }

  /**
   * Answers a viewer's offer for `stream`. Rejects with an OfferError when the offer is not SDP or
   * accepts nothing the stream has, and with the stream's error when it cannot start. Whatever
   * fails, the session is closed (and so detached) before the promise rejects.
   */
  static async open(
    stream: AttachableStream,
    offerSdp: string,
    settings: WebRtcSettings,
    meta: SessionMeta = {},
    backend: WebRtcBackend,
  ): Promise<{ session: WebRtcSession; answer: string }> {
    const session = WebRtcSession.create(stream, offerSdp, settings, meta, backend);
    return { session, answer: await session.answer() };
  }

  /**
   * The session for an offer, not yet attached: its owner (the SessionTable) holds it from here
   * on, so that a shutdown during answer() closes it too. Throws an OfferError when the offer is
   * not SDP (before anything is created).
   */
  static create(stream: AttachableStream, offerSdp: string, settings: WebRtcSettings, meta: SessionMeta, backend: WebRtcBackend): WebRtcSession {
    const session = new WebRtcSession(parseOffer(offerSdp), offerSdp, stream.name, settings, meta, backend);
    session.#stream = stream;
    return session;
  }

  /** Attaches to the stream and answers the offer; closes the session before it rejects. Once only. */
  async answer(): Promise<string> {
    const { meta } = this;
    const stream = this.#stream;
    const onAbort = () => this.close(new CloseReason('viewer_left'));
    meta.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (meta.signal?.aborted) throw new CloseReason('viewer_left');
      if (!stream || this.#answering) throw new Error('webrtc session: answer() called twice or after close');
      this.#answering = true;
      const tracks = await stream.attach(this);
      this.#assertOpen();
      const talk = this.#takeTalk(stream);
      const sdp = await this.#negotiate(this.offerSdp, tracks, meta.trickle ?? false, stream, talk);
      this.transcoded = [...(stream.bindingOf?.(this) ?? [])].filter(([, b]) => b.auto).map(([kind]) => kind);
      const answer = withTranscodeNote(sdp, this.transcoded);
      this.#log.info({ remote: meta.remoteAddr, video: this.#video?.description, audio: this.#audio?.description, ...(this.#mic ? { mic: this.#mic.describe() } : {}) }, 'webrtc session opened');
      return answer;
    } catch (e) {
      const closedBefore = this.closed;
      const err = e instanceof Error ? e : new Error(String(e));
      this.close(err);
      throw closedBefore ? new Error(`webrtc session closed during setup: ${this.closeReason}`) : err;
    } finally {
      meta.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Whether the offer talks only: a microphone and nothing to receive. */
  get #talkOnly(): boolean {
    return this.offer.mic !== undefined && !this.offer.video && !this.offer.audio;
  }

  /**
   * The stream's Talk for an explicit microphone (a sendonly audio line: go2rtc's player, the
   * page's talk button), taken now. A viewer who only talks is refused when it cannot (no
   * backchannel, someone else talks); one who also watches watches on, and the API says why it
   * does not talk. A sendrecv audio line takes the Talk only when it speaks (MicLane).
   */
  #takeTalk(stream: AttachableStream): Talk | undefined {
    if (this.offer.mic?.media.direction !== 'sendonly') return undefined;
    try {
      if (!stream.startTalking) throw new NoBackchannelError(stream.name);
      return stream.startTalking(this);
    } catch (e) {
      if (e instanceof TalkBusyError) countRefusal('talk_busy');
      if (this.#talkOnly) throw e;
      this.#notTalking = e instanceof Error ? e.message : String(e);
      this.#log.info({ why: this.#notTalking }, 'viewer offers a microphone; not talking');
      return undefined;
    }
  }

  async #negotiate(offerSdp: string, tracks: readonly Track[], trickle: boolean, stream: AttachableStream, talk?: Talk): Promise<string> {
    const all = stream.tracks;
    const videoTrack = tracks.find((t) => t.kind === 'video' && this.offer.request.video?.includes(t.codec.name));
    const video = chooseVideo(this.offer, videoTrack);
    const audio = chooseAudio(this.offer, tracks);
    const streamVideo = (all ?? tracks).filter((t) => t.kind === 'video');
    if (!video && this.offer.video && streamVideo.length > 0) {
      // Audio alone would leave the viewer a black picture with no word of why.
      const names = [...new Set(streamVideo.map((t) => t.codec.name))].join(', ');
      throw new OfferError(
        `stream "${this.streamName}" sends ${names} video, which this viewer cannot play (its offer accepts ${this.request.video?.join(', ') ?? 'no video codec we send'}), ` +
          'and no transcode to one it accepts runs (the stream\'s transcode: auto starts one; never does not)',
      );
    }
    if (!video && !audio && !(talk && this.#talkOnly)) {
      const have = (all ?? tracks).map(describeTrack).join(', ') || 'no tracks';
      const want = [...(this.request.video ?? []), ...(this.request.audio ?? [])].join(', ');
      throw new OfferError(`stream "${this.streamName}" has ${have}; the offer accepts ${want}`);
    }
    const peer = this.#peer;
    await peer.setRemoteOffer(offerSdp);
    this.#assertOpen();
    if (video && videoTrack) {
      const out = peer.addSendTrack({ mid: video.mid, kind: 'video', codec: sendCodec(video.codec, video.fmtp) });
      this.#video = new RtpLane(out, videoTrack.codec, video.description);
    }
    if (audio) {
      const out = peer.addSendTrack({ mid: audio.mid, kind: 'audio', codec: sendCodec(audio.codec) });
      this.#audio = new RtpLane(out, audio.track.codec, `${audio.track.codec.name} pt ${audio.codec.payloadType}`);
    }
    if (talk || (this.offer.mic?.media.direction === 'sendrecv' && stream.backchannel && stream.startTalking)) this.#listen(stream, talk, audio);
    const answer = await peer.createAnswer();
    this.#assertOpen();
    this.#connectTimer = setTimeout(() => this.close(new CloseReason('connect_timeout')), this.settings.timeouts.connect);
    if (trickle) {
      peer.gatheringComplete().catch((e: unknown) => this.close(e instanceof Error ? e : new Error(String(e))));
      return answer;
    }
    // The HTTP API answers once, so the answer waits for every local candidate.
    await peer.gatheringComplete();
    this.#assertOpen();
    return peer.localDescription();
  }

  /**
   * Receives the microphone on its m-line and sends it on to the camera: through `talk` when
   * taken already, else through a Talk taken when the viewer first speaks.
   */
  #listen(stream: AttachableStream, talk: Talk | undefined, sending: { mid: string; codec: OfferCodec } | undefined): void {
    const target = talk?.codec ?? stream.backchannel?.codec;
    if (!target) return;
    const mic = chooseMic(this.offer, target, sending);
    const refuse = (why: string) => {
      talk?.release();
      if (this.#talkOnly) throw new OfferError(why);
      this.#notTalking = why;
      this.#log.info({ why }, 'viewer offers a microphone; not talking');
    };
    if (!mic) return refuse(`the microphone's m-line has no codec camrelay decodes (${this.offer.mic?.codecs.map((c) => c.name).join(', ') || 'none'})`);
    const input: Codec = { name: mic.name, clockRate: mic.codec.clockRate, ...(mic.codec.channels ? { channels: mic.codec.channels } : {}) };
    const unsupported = micConversionError(input, target);
    if (unsupported) return refuse(unsupported.message);
    let recv;
    try {
      recv = this.#peer.addRecvTrack({ mid: mic.mid, kind: 'audio', codec: sendCodec(mic.codec) });
    } catch (e) {
      return refuse(`the microphone's m-line cannot be received: ${e instanceof Error ? e.message : String(e)}`);
    }
    const direction = sending?.mid === mic.mid ? 'sendrecv' : 'recvonly';
    const lane = new MicLane(recv, input, talk ?? (() => stream.startTalking!(this)), this.#log, direction);
    this.#mic = lane;
    lane.once('close', () => {
      if (lane.notTalking) this.#notTalking = lane.notTalking;
      if (this.#mic === lane) this.#mic = undefined;
    });
  }

  /**
   * Trickle ICE from the viewer; null = end of candidates. Candidates that arrive while open()
   * still runs are the signalling layer's to hold until it resolves.
   */
  async addRemoteCandidate(c: IceCandidateInit | null): Promise<void> {
    this.#assertOpen();
    await this.#peer.addRemoteCandidate(c);
  }

  /**
   * Local candidates for trickle ICE: those gathered so far at once, then each new one; null
   * when gathering is done. Returns the unsubscribe; close() drops every listener.
   */
  onLocalCandidate(listener: (c: IceCandidateInit | null) => void): () => void {
    for (const c of this.#localCandidates) listener(c);
    if (this.closed) return () => undefined;
    this.#candidateListeners.add(listener);
    return () => this.#candidateListeners.delete(listener);
  }

  onFrame(frame: Frame): void {
    if (!this.#connected || this.closed) return;
    if (frame.track.kind === 'video') {
      const lane = this.#video;
      if (!lane || !lane.accepts(frame.track)) return;
      if (!this.#videoGate.admit(frame)) return;
      lane.send(frame, lane.packetize(frame));
    } else {
      const lane = this.#audio;
      if (!lane || !lane.accepts(frame.track)) return;
      lane.send(frame, lane.packetize(frame));
    }
    if (this.#peer.pendingWrites > MAX_PENDING_WRITES) this.close(new CloseReason('slow_consumer', 'viewer cannot keep up: send queue full'));
  }

  info(): ConsumerInfo {
    const v = this.#video;
    const a = this.#audio;
    return {
      type: 'webrtc',
      id: this.id,
      remote_addr: this.meta.remoteAddr,
      user_agent: this.meta.userAgent,
      ice_remote_addr: this.#peer.remoteAddress(),
      state: this.closed ? 'closed' : this.#peer.state,
      created_at: new Date(this.createdAt).toISOString(),
      medias: [v && `video, sendonly, ${v.description}`, a && `audio, sendonly, ${a.description}`, this.#mic?.describe()].filter(Boolean),
      ...(this.#mic?.talking ? { talking: true } : {}),
      ...((this.#mic?.notTalking ?? this.#notTalking) ? { not_talking: this.#mic?.notTalking ?? this.#notTalking } : {}),
      bytes_send: (v?.bytes ?? 0) + (a?.bytes ?? 0),
      packets_send: (v?.packets ?? 0) + (a?.packets ?? 0),
      ...(this.closeReason ? { close_reason: this.closeReason } : {}),
    };
  }

  /** Accepts a plain reason string too: close('disconnect timeout'). */
  override close(reason?: Error | string): void {
    super.close(typeof reason === 'string' ? new Error(reason) : reason);
  }

  #onState(s: PeerState): void {
    if (this.closed) return;
    this.#log.debug({ state: s }, 'webrtc connection state');
    if (s === 'connected' && !this.#connected) {
      this.#connected = true;
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
      this.#lastInbound = performance.now();
      this.#armDisconnect(this.settings.timeouts.disconnect);
      this.#startVideo();
      this.emit('connected');
    } else if (s === 'disconnected' || s === 'failed' || s === 'closed') {
      this.close(new CloseReason(PEER_CLOSE[s]));
    }
  }

  #startVideo(): void {
    if (this.#video && this.#stream) replayCatchUp(this.#stream, this);
  }

  // One timer, re-armed lazily: inbound packets only stamp #lastInbound, so a busy peer costs no
  // timer churn.
  #armDisconnect(ms: number): void {
    this.#disconnectTimer = setTimeout(() => {
      this.#disconnectTimer = undefined;
      const limit = this.settings.timeouts.disconnect;
      const silent = performance.now() - this.#lastInbound;
      if (silent >= limit) this.close(new CloseReason('disconnect_timeout'));
      else this.#armDisconnect(limit - silent);
    }, Math.max(1, Math.ceil(ms)));
  }

  #assertOpen(): void {
    if (this.closed) throw new Error(`webrtc session closed during setup: ${this.closeReason}`);
  }

  protected onClose(reason?: Error): Promise<void> {
    this.closeReason = reason?.message ?? 'closed';
    this.closeCode = closeCodeOf(reason);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#disconnectTimer);
    this.#connectTimer = this.#disconnectTimer = undefined;
    this.#candidateListeners.clear();
    this.#stream = undefined;
    const mic = this.#mic;
    mic?.close();
    this.#peer.removeAllListeners('state');
    this.#peer.removeAllListeners('activity');
    this.#peer.removeAllListeners('candidate');
    this.#peer.close();
    this.#log.info({ reason: this.closeReason, bytes: this.info().bytes_send }, 'webrtc session closed');
    // A talker's AAC encoder (an ffmpeg child) is awaited too.
    return mic ? Promise.all([this.#peer.done, mic.done]).then(() => undefined) : this.#peer.done;
  }
}

/** The offered payload type as sent: `fmtp` is what to answer it with, when not the offer's own. */
function sendCodec(c: OfferCodec, fmtp?: Record<string, string>): SendCodec {
  return { payloadType: c.payloadType, name: c.name, clockRate: c.clockRate, channels: c.channels, ...(fmtp && { fmtp }) };
}

/**
 * The answer says which path the viewer got, where every signalling path carries it (HTTP has
 * the X-Camrelay-Transcode header too; the WebSocket's JSON messages stay go2rtc's shape): a
 * session-level attribute, which SDP parsers skip (RFC 8866 5.13: unknown attributes are ignored).
 */
function withTranscodeNote(sdp: string, kinds: readonly string[]): string {
  const t = kinds.length > 0 ? /\r?\nt=[^\r\n]*(\r?\n)/.exec(sdp) : null;
  if (!t) return sdp;
  const end = t.index + t[0].length;
  return `${sdp.slice(0, end)}a=x-camrelay-transcode:${kinds.join(',')}${t[1]}${sdp.slice(end)}`;
}
