// One viewer's peer connection on node-datachannel (libdatachannel). Facts this relies on, from
// node-datachannel 0.33.4 (libdatachannel 0.24.5, libjuice):
// - with disableAutoNegotiation the answer is ours to make: setRemoteDescription creates a track
//   per offered m-line (reciprocated), addTrack with the same mid replaces its description, and
//   setLocalDescription('answer') answers each m-line from its track's description.
// - a track with no packetizer sends what it is given as RTP (ndc-send-track.ts).
// - what the viewer sends on a track comes to its onMessage (one callback per track), decrypted:
//   RTCP, and RTP once the track's direction receives (RecvOnly/SendRecv; libdatachannel drops
//   RTP on a SendOnly or Inactive track). RTP reaches a track by its SSRC, which the offer must
//   name (a=ssrc, as browsers write it), or when the answer has one media track only. No
//   RtcpReceivingSession is chained: it would swallow the RTCP that is our 'activity' signal,
//   so no receiver reports go back for received media.
// - the direction of a track is fixed when it is made (pc.addTrack); so the answer's tracks are
//   made in createAnswer, once every send and receive track of each m-line is known.
// - every native wrapper must be held until the library reports it closed (ndc-native.ts).
// - pc.bytesReceived() counts SCTP (data channel) bytes only, so it cannot tell that a media
//   viewer is alive; see #watchLiveness for what does.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { PeerConnection, Track, Video, Audio } from 'node-datachannel';
import { PeerBase } from './peer-base.js';
import { RecvRtpTrack, type RecvTrack } from './recv-track.js';
import { log } from '../../core/log.js';
import {
  extraCandidates,
  withExtraCandidates,
  type IceCandidateInit,
  type PeerState,
  type RecvTrackSpec,
  type SendTrack,
  type SendTrackSpec,
  type WebRtcPeer,
} from './backend.js';
import {
  capExtraPriorities,
  formatAddress,
  normalizeCandidate,
  normalizeCandidates,
  preferPassiveDtls,
  scanOffer,
  toNdcIceServers,
  withoutCandidates,
  type OfferedMedia,
} from './ndc-sdp.js';
import type { WebRtcSettings } from './settings.js';
import { nativeLive, type NdcLib, type NdcTransport } from './ndc-native.js';
import { NdcSendTrack } from './ndc-send-track.js';
import { firstMediaCodec, fmtpLine, mediaDescription } from './ndc-media.js';

const CNAME = 'camrelay';
/** One msid stream for all tracks, so a browser puts audio and video in one MediaStream. */
const MSID = 'camrelay';
/** How often the liveness check runs (one timer per connected peer). */
const LIVENESS_TICK_MS = 250;
/**
 * Sending nothing for this long, we expect no RTCP back. Viewers report on the media they get
 * (browsers about every second for video, every 5 s for audio); no media, no report.
 */
const SEND_QUIET_MS = 1500;
/** A native close that never reports 'closed' must not hold shutdown forever. */
const CLOSE_GRACE_MS = 5000;

const STATES = new Set<PeerState>(['new', 'connecting', 'connected', 'disconnected', 'failed', 'closed']);

/** What one answered m-line sends and receives, until createAnswer makes its native track. */
interface Line {
  media: OfferedMedia;
  kind: 'audio' | 'video';
  /** The one payload type answered, its rtpmap and the fmtp to answer with. */
  payloadType: number;
  rtpmap: string;
  fmtp: string | undefined;
  send?: { out: NdcSendTrack; clockRate: number };
  recv?: RecvRtpTrack;
}

/** Our answer names `nack` on video lines only (libdatachannel's addVideoCodec); the offer must too. */
function answersNack(line: Line): boolean {
  return line.kind === 'video' && line.media.codecs.some((c) => c.payloadType === line.payloadType && c.nack);
}

/** RTCP rather than RTP (RFC 5761 4: payload types 64-95 are not RTP's on a muxed port). */
function isRtcp(b: Buffer): boolean {
  const pt = (b[1] ?? 0) & 0x7f;
  return pt >= 64 && pt <= 95;
}

export class NdcPeer extends PeerBase implements WebRtcPeer {
  #pc: PeerConnection | undefined;
  #media: OfferedMedia[] = [];
  /** Every track wrapper we were handed: each must be closed by us (see the header). */
  #tracks: Track[] = [];
  /** m-lines with a send or receive track, by mid. */
  #lines = new Map<string, Line>();
  #recvTracks = new Set<RecvRtpTrack>();
  #answered = false;
  #gathered: Promise<void>;
  #gatheredResolve!: () => void;
  #nativeClosed: Promise<void>;
  #nativeClosedResolve!: () => void;
  /** One per track: resolved by the track's 'closed' callback. */
  #tracksClosed: Promise<void>[] = [];
  #liveness: NodeJS.Timeout | undefined;
  #lastWrite = -Infinity;
  #wrote = false;
  /** Local candidates already emitted (the same one can come from the callback and the SDP). */
  #candidatesSent = new Set<string>();
  #gatheringEnded = false;
  /** Send tracks whose 'open' has not come yet; 'connected' waits for them. */
  #unopened = 0;
  #pcConnected = false;
  #remote: string | undefined;

  constructor(
    private readonly lib: NdcLib,
    private readonly settings: WebRtcSettings,
    private readonly transport: NdcTransport,
  ) {
    super('NdcPeer');
    this.#gathered = new Promise((resolve) => (this.#gatheredResolve = resolve));
    this.#nativeClosed = new Promise((resolve) => (this.#nativeClosedResolve = resolve));
  }


  /** Nothing waits in the library: a packet is encrypted and handed to the socket inside write(). */
  get pendingWrites(): number {
    return 0;
  }

  /** Called per packet: only a flag; the liveness tick reads the clock (per packet, clock_gettime was ~0.5% of the main thread at 50 viewers). */
  wrote(): void {
    this.#wrote = true;
  }

  async setRemoteOffer(sdp: string): Promise<void> {
    this.#assertOpen();
    if (this.#pc) throw new Error('remote offer already set');
    this.#media = scanOffer(sdp);
    const ice = toNdcIceServers(this.settings.iceServers);
    if (ice.skipped.length) log.warn({ urls: ice.skipped }, 'webrtc: ice_servers entries node-datachannel cannot use are left out');
    const { port, bindAddress } = this.transport;
    const pc = new this.lib.PeerConnection('camrelay', {
      iceServers: ice.servers,
      enableIceUdpMux: true,
      portRangeBegin: port,
      portRangeEnd: port,
      ...(bindAddress !== undefined && { bindAddress }),
      disableAutoNegotiation: true,
    });
    this.#pc = pc;
    nativeLive.add(pc);
    pc.onStateChange((s) => this.#onState(s, pc));
    pc.onIceStateChange((s) => {
      // ICE can fail or lose consent while DTLS still counts as connected.
      if (s === 'disconnected' || s === 'failed') this.setState(s);
    });
    pc.onGatheringStateChange((s) => {
      if (s === 'complete') this.#onGathered();
    });
    pc.onLocalCandidate((candidate, mid) => this.#onLocalCandidate(candidate, mid));
    pc.setRemoteDescription(preferPassiveDtls(sdp), 'offer');
  }

  addSendTrack(spec: SendTrackSpec): SendTrack {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('addSendTrack before setRemoteOffer');
    if (this.#answered) throw new Error('addSendTrack after createAnswer');
    const m = this.#media.find((x) => x.mid === spec.mid);
    if (!m) throw new Error(`the offer has no m-line with mid ${spec.mid}`);
    if (m.kind !== spec.kind) throw new Error(`m-line ${spec.mid} is ${m.kind}, not ${spec.kind}`);
    const offered = m.codecs.find((c) => c.payloadType === spec.codec.payloadType);
    if (!offered) throw new Error(`m-line ${spec.mid} has no payload type ${spec.codec.payloadType}`);
    const had = this.#lines.get(spec.mid);
    if (had?.send) throw new Error(`m-line ${spec.mid} has a send track already`);
    if (had && had.payloadType !== offered.payloadType) {
      throw new Error(`m-line ${spec.mid} receives payload type ${had.payloadType}: it cannot send ${offered.payloadType} (one codec per m-line)`);
    }
    const fmtp = spec.codec.fmtp ? fmtpLine(spec.codec.fmtp) : offered.fmtp;
    const ssrc = randomBytes(4).readUInt32BE(0) || 1;
    const out = new NdcSendTrack(ssrc, offered.payloadType, this);
    // The send track's fmtp is what the m-line answers (a receive track there takes its codec).
    const line: Line = { ...had, media: m, kind: spec.kind, payloadType: offered.payloadType, rtpmap: offered.rtpmap, fmtp, send: { out, clockRate: spec.codec.clockRate } };
    this.#lines.set(spec.mid, line);
    return out;
  }

  addRecvTrack(spec: RecvTrackSpec): RecvTrack {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('addRecvTrack before setRemoteOffer');
    if (this.#answered) throw new Error('addRecvTrack after createAnswer');
    const m = this.#media.find((x) => x.mid === spec.mid);
    if (!m) throw new Error(`the offer has no m-line with mid ${spec.mid}`);
    if (m.kind !== spec.kind) throw new Error(`m-line ${spec.mid} is ${m.kind}, not ${spec.kind}`);
    if (m.port === 0 || (m.direction !== 'sendrecv' && m.direction !== 'sendonly')) {
      throw new Error(`m-line ${spec.mid} sends nothing (the offer says ${m.port === 0 ? 'port 0' : m.direction})`);
    }
    const offered = m.codecs.find((c) => c.payloadType === spec.codec.payloadType);
    if (!offered) throw new Error(`m-line ${spec.mid} has no payload type ${spec.codec.payloadType}`);
    const had = this.#lines.get(spec.mid);
    if (had?.recv) throw new Error(`m-line ${spec.mid} has a receive track already`);
    if (had && had.payloadType !== offered.payloadType) {
      throw new Error(`m-line ${spec.mid} sends payload type ${had.payloadType}: it cannot receive ${offered.payloadType} (one codec per m-line)`);
    }
    const recv = new RecvRtpTrack(spec.mid, spec.codec, () => this.#recvTracks.delete(recv));
    this.#recvTracks.add(recv);
    const fmtp = had ? had.fmtp : spec.codec.fmtp ? fmtpLine(spec.codec.fmtp) : offered.fmtp;
    this.#lines.set(spec.mid, { ...had, media: m, kind: spec.kind, payloadType: offered.payloadType, rtpmap: offered.rtpmap, fmtp, recv });
    return recv;
  }

  /** The native track of an m-line with a send or receive track (or both), in its direction. */
  #answerLine(mid: string, line: Line): void {
    const { send, recv } = line;
    const desc = mediaDescription(this.lib, line.kind, mid, send && recv ? 'SendRecv' : send ? 'SendOnly' : 'RecvOnly', line.payloadType, line.rtpmap, line.fmtp);
    if (send) desc.addSSRC(send.out.ssrc, CNAME, MSID, `camrelay-${line.kind}`);
    const track = this.#addTrack(desc, recv);
    if (!send) return;
    // Sender reports (browsers sync audio to video with them) and answers to NACKs from what was
    // sent; neither re-packetizes. NACKs are answered only where both sides asked for them: the
    // responder keeps the track's last 512 packets, ~0.7 MiB of video per viewer, and an audio
    // line (whose answer names no nack: libdatachannel's addAudioCodec) never gets a NACK.
    const rtpConfig = new this.lib.RtpPacketizationConfig(send.out.ssrc, CNAME, line.payloadType, send.clockRate);
    const sr = new this.lib.RtcpSrReporter(rtpConfig);
    if (answersNack(line)) sr.addToChain(new this.lib.RtcpNackResponder());
    track.setMediaHandler(sr);
    send.out.bind(track);
    this.#unopened++;
    track.onOpen(() => {
      send.out.opened();
      this.#unopened--;
      this.#maybeConnected();
    });
  }

  async createAnswer(): Promise<string> {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('createAnswer before setRemoteOffer');
    if (this.#answered) throw new Error('answer already created');
    this.#answered = true;
    for (const [mid, line] of this.#lines) this.#answerLine(mid, line);
    // m-lines we neither send nor receive on are answered inactive with their first codec (a
    // track each, so that libdatachannel does not answer them sendonly with every codec of the
    // offer). Rejected ones (port 0) are left to libdatachannel, which answers them rejected too.
    for (const m of this.#media) {
      if ((m.kind !== 'audio' && m.kind !== 'video') || !m.mid || m.port === 0 || this.#lines.has(m.mid)) continue;
      const first = firstMediaCodec(m);
      if (!first) continue;
      this.#addTrack(mediaDescription(this.lib, m.kind, m.mid, 'Inactive', first.payloadType, first.rtpmap, first.fmtp));
    }
    pc.setLocalDescription('answer');
    const sdp = pc.localDescription()?.sdp;
    if (!sdp) throw new Error('node-datachannel made no answer');
    // Candidates go out as 'candidate' events (and in localDescription() once gathered).
    return withoutCandidates(sdp);
  }

  gatheringComplete(): Promise<void> {
    if (!this.#answered) return Promise.reject(new Error('gatheringComplete before createAnswer'));
    return this.#gathered.then(() => {
      this.#assertOpen();
    });
  }

  localDescription(): string {
    const sdp = this.#pc?.localDescription()?.sdp;
    if (!sdp) throw new Error('no local description yet');
    return capExtraPriorities(withExtraCandidates(normalizeCandidates(sdp), this.settings.candidates));
  }

  async addRemoteCandidate(c: IceCandidateInit | null): Promise<void> {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('addRemoteCandidate before setRemoteOffer');
    // libdatachannel has no end-of-candidates call; checks simply go on with what it has.
    if (!c || !c.candidate.trim()) return;
    const mid = c.sdpMid ?? this.#media[c.sdpMLineIndex ?? 0]?.mid ?? this.#media.find((m) => m.mid)?.mid ?? '0';
    const line = c.candidate.trim().replace(/^a=/, '');
    pc.addRemoteCandidate(line.startsWith('candidate:') ? line : `candidate:${line}`, mid);
  }

  remoteAddress(): string | undefined {
    if (this.#remote || this.closed) return this.#remote;
    const pair = this.state === 'connected' ? this.#pc?.getSelectedCandidatePair() : undefined;
    if (pair) this.#remote = formatAddress(pair.remote.address, pair.remote.port);
    return this.#remote;
  }

  /** Adds a native track; `recv` gets the RTP that arrives on it. */
  #addTrack(desc: Video | Audio, recv?: RecvRtpTrack): Track {
    const track = this.#pc!.addTrack(desc);
    this.#tracks.push(track);
    nativeLive.add(track);
    this.#tracksClosed.push(
      new Promise<void>((resolve) =>
        track.onClosed(() => {
          nativeLive.delete(track);
          resolve();
        }),
      ),
    );
    // RTCP from the viewer (reports, NACK, PLI), and on a receiving track its RTP: both are news
    // that it is alive. Also keeps a track with no reader from queueing them in the library.
    if (recv) {
      track.onMessage((msg) => {
        this.activity();
        if (!isRtcp(msg)) recv.receiveRaw(msg);
      });
    } else track.onMessage(() => this.activity());
    return track;
  }

  /**
   * Gathering has ended: the candidates of the local description that no event has carried yet
   * (each callback has its own queue into JS, so the end may overtake the last candidate), then
   * null, as the interface promises.
   */
  #onGathered(): void {
    if (this.closed || this.#gatheringEnded) return;
    const sdp = this.#pc?.localDescription()?.sdp ?? '';
    const first = sdp.split(/\r\n(?=m=)/).find((m) => m.startsWith('m='));
    const mid = /^a=mid:(\S+)/m.exec(first ?? '')?.[1] ?? this.#media.find((m) => m.mid)?.mid ?? '0';
    for (const line of first?.match(/^a=candidate:.*$/gm) ?? []) this.#onLocalCandidate(line, mid);
    this.#gatheringEnded = true;
    this.emit('candidate', null);
    this.#gatheredResolve();
  }

  #onLocalCandidate(candidate: string, mid: string): void {
    if (this.closed || this.#gatheringEnded) return;
    const line = normalizeCandidate(candidate.trim().replace(/^a=/, ''));
    if (this.#candidatesSent.has(line)) return;
    this.#candidatesSent.add(line);
    const init: IceCandidateInit = {
      candidate: line,
      sdpMid: mid,
      sdpMLineIndex: Math.max(0, this.#media.findIndex((m) => m.mid === mid)),
    };
    this.emit('candidate', init);
    const extras = extraCandidates(init.candidate, this.settings.candidates);
    if (!extras.length) return;
    for (const extra of capExtraPriorities([init.candidate, ...extras].join('\n')).split('\n').slice(1)) {
      this.emit('candidate', { ...init, candidate: extra } satisfies IceCandidateInit);
    }
  }

  #onState(s: string, pc: PeerConnection): void {
    if (s === 'closed') {
      nativeLive.delete(pc);
      this.#nativeClosedResolve();
    }
    if (this.closed) return;
    if (s === 'connected') {
      this.#pcConnected = true;
      this.#maybeConnected();
    } else if (STATES.has(s as PeerState)) this.setState(s as PeerState);
  }

  /**
   * 'connected' once DTLS is up and every send track is open: libdatachannel reports the
   * connection first and opens the tracks after, through another callback, and a write before
   * its track is open is lost (the session sends the cached GOP the moment it hears 'connected').
   */
  #maybeConnected(): void {
    if (this.closed || !this.#pcConnected || this.#unopened > 0) return;
    this.#gatheredResolve(); // candidates no longer matter once connected
    this.#watchLiveness();
    this.setState('connected');
  }

  /**
   * 'activity' from what libdatachannel lets us see: RTCP from the viewer on any track. That
   * proves the viewer alive only while we send it media: with nothing sent (a stream between
   * keyframes at the start, a camera reconnecting) the viewer reports nothing, and the liveness
   * of the connection is left to libjuice's ICE consent checks (every 4-6 s, lost after 30 s →
   * 'failed' → the session closes).
   */
  #watchLiveness(): void {
    if (this.#liveness) return;
    this.#liveness = setInterval(() => {
      const now = performance.now();
      if (this.#wrote) {
        this.#lastWrite = now;
        this.#wrote = false;
      }
      if (now - this.#lastWrite > SEND_QUIET_MS) this.activity();
    }, LIVENESS_TICK_MS);
  }

  #assertOpen(): PeerConnection | undefined {
    this.throwIfClosed();
    return this.#pc;
  }

  protected onClose(): Promise<void> | void {
    clearInterval(this.#liveness);
    this.#liveness = undefined;
    this.#gatheredResolve();
    // Children first: the receiving tracks end before the connection does.
    for (const r of [...this.#recvTracks]) r.close();
    const pc = this.#pc;
    if (!pc) return;
    this.markClosed();
    for (const t of this.#tracks) {
      try {
        t.close();
      } catch {
        /* already gone (library cleanup at shutdown) */
      }
    }
    this.#tracks = [];
    try {
      pc.close();
    } catch {
      this.#nativeClosedResolve();
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_GRACE_MS);
      timer.unref();
    });
    const closed = Promise.all([this.#nativeClosed, ...this.#tracksClosed]).then(() => undefined);
    return Promise.race([closed, grace]).finally(() => clearTimeout(timer));
  }
}
