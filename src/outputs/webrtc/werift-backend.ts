// The WebRTC backend on werift (pure TypeScript). Facts this relies on, from werift 0.24.4:
// - codecs are negotiated by mime type only, keeping the offer's payload types and fmtp; an m-line
//   with no codec in the local list makes setRemoteDescription throw. So the local list is made
//   from the offer itself, and the session decides what is sent where. werift has packetizers
//   for none of it that we use (it has no H.265 one at all): sendRtp sends our payloads as they
//   are, so H.265 (video/H265, answered with the fmtp the session chose) works as H.264 does.
// - a sender takes rtx/red from the negotiated list (red makes it RED-encode every packet), so
//   those are left out of the local list and never answered.
// - setLocalDescription awaits candidate gathering; sockets bound by a gathering still running
//   when the peer closes are not closed by pc.close(), so close() closes the ICE agents again
//   once gathering has settled.
// - every non-STUN datagram (DTLS, SRTP, SRTCP) reaches Connection.onData; inbound STUN requests
//   pass the iceFilterStunResponse hook. Together they are the 'activity' signal.
// - setRemoteDescription makes a 'recvonly' transceiver per offered m-line and, when the m-line
//   sends (a=sendrecv/sendonly) and names its SSRC (a=ssrc, as browsers write it), a receiving
//   track for that SSRC, whose onReceiveRtp gets each decrypted packet of an offered payload type
//   (others werift drops itself). The answer's direction is the transceiver's direction ANDed with
//   the offer's reversed; transceivers are made 'inactive' at once, then 'sendonly', 'recvonly'
//   or 'sendrecv' by the tracks added.
import {
  MediaStream,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
  SessionDescription,
  type MediaStreamTrack,
  type RTCPeerConnectionConfig,
  type RTCRtpSender,
  type RTCRtpTransceiver,
} from 'werift';
import { PeerBase } from './peer-base.js';
import { RecvRtpTrack, type RecvTrack } from './recv-track.js';
import {
  extraCandidates,
  withExtraCandidates,
  type IceCandidateInit,
  type RecvTrackSpec,
  type RtpOut,
  type SendTrack,
  type SendTrackSpec,
  type WebRtcBackend,
  type WebRtcPeer,
} from './backend.js';
import type { WebRtcSettings } from './settings.js';
import { payloadBytes } from '../../rtp/payload.js';

const NOT_ANSWERED = new Set(['rtx', 'red', 'ulpfec', 'flexfec-03']);

export const weriftBackend: WebRtcBackend = {
  name: 'werift',
  createPeer: (settings) => new WeriftPeer(settings),
};

class WeriftSendTrack implements SendTrack {
  constructor(
    private readonly sender: RTCRtpSender,
    readonly payloadType: number,
    private readonly peer: WeriftPeer,
  ) {}

  get ssrc(): number {
    return this.sender.ssrc;
  }

  write(p: RtpOut): void {
    if (this.peer.closed || this.sender.dtlsTransport.state !== 'connected') return;
    // werift rewrites the header it is given and keeps the packet for NACK replies: a fresh one each time.
    const header = new RtpHeader({
      payloadType: this.payloadType,
      sequenceNumber: p.sequenceNumber,
      timestamp: p.timestamp,
      marker: p.marker,
      ssrc: this.sender.ssrc,
    });
    this.peer.sent(this.sender.sendRtp(new RtpPacket(header, payloadBytes(p))));
  }
}

export class WeriftPeer extends PeerBase implements WebRtcPeer {
  #pc: RTCPeerConnection | undefined;
  #unsubscribe: (() => void)[] = [];
  #answered: Promise<void> | undefined;
  #pending = 0;
  /** One msid stream for all tracks, so a browser puts audio and video in one MediaStream. */
  #stream = new MediaStream({ id: 'camrelay' });
  /** Per m-line with a track: the payload type sent (if any) and the receiving track (if any). */
  #lines = new Map<string, { send?: number; recv?: RecvRtpTrack }>();
  #recvTracks = new Set<RecvRtpTrack>();

  constructor(private readonly settings: WebRtcSettings) {
    super('WeriftPeer');
  }


  get pendingWrites(): number {
    return this.#pending;
  }

  /** Counts a write until the socket took it. */
  sent(p: Promise<void>): void {
    this.#pending++;
    const done = () => {
      this.#pending--;
    };
    p.then(done, done);
  }

  async setRemoteOffer(sdp: string): Promise<void> {
    this.#assertOpen();
    if (this.#pc) throw new Error('remote offer already set');
    const pc = new RTCPeerConnection(this.#config(sdp));
    this.#pc = pc;
    this.#watch(pc);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    this.#assertOpen();
    const noStun = !this.settings.iceServers.some((x) => x.urls.some((u) => /^stuns?:/i.test(u)));
    for (const t of pc.iceTransports) {
      const sub = t.connection.onData.subscribe(() => this.activity());
      this.#unsubscribe.push(sub.unSubscribe);
      // werift falls back to a public STUN server when none is configured, and checks pairs only
      // once gathering is done: on a LAN without internet that can hold the first picture for
      // 5 s. With no STUN server configured, gather host candidates only.
      if (noStun) t.connection.stunServer = undefined;
    }
    // Nothing is received, and m-lines without a send track are answered inactive.
    for (const t of pc.getTransceivers()) t.setDirection('inactive');
  }

  addSendTrack(spec: SendTrackSpec): SendTrack {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('addSendTrack before setRemoteOffer');
    const t = pc.getTransceivers().find((x) => x.mid === spec.mid);
    if (!t) throw new Error(`the offer has no m-line with mid ${spec.mid}`);
    if (t.kind !== spec.kind) throw new Error(`m-line ${spec.mid} is ${t.kind}, not ${spec.kind}`);
    const line = this.#line(spec.mid);
    if (line.send !== undefined) throw new Error(`m-line ${spec.mid} has a send track already`);
    if (line.recv && line.recv.codec.payloadType !== spec.codec.payloadType) {
      throw new Error(`m-line ${spec.mid} receives payload type ${line.recv.codec.payloadType}: it cannot send ${spec.codec.payloadType} (one codec per m-line)`);
    }
    const codec = answeredCodec(t, spec.mid, spec.codec.payloadType, spec.codec.fmtp);
    narrow(t, codec);
    t.sender.setStreams([this.#stream]);
    line.send = codec.payloadType;
    this.#direct(t, line);
    return new WeriftSendTrack(t.sender, codec.payloadType, this);
  }

  addRecvTrack(spec: RecvTrackSpec): RecvTrack {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('addRecvTrack before setRemoteOffer');
    if (this.#answered) throw new Error('addRecvTrack after createAnswer');
    const t = pc.getTransceivers().find((x) => x.mid === spec.mid);
    if (!t) throw new Error(`the offer has no m-line with mid ${spec.mid}`);
    if (t.kind !== spec.kind) throw new Error(`m-line ${spec.mid} is ${t.kind}, not ${spec.kind}`);
    // offerDirection is the offer's reversed: 'recvonly' or 'sendrecv' when the viewer sends.
    if (t.offerDirection !== 'recvonly' && t.offerDirection !== 'sendrecv') {
      throw new Error(`m-line ${spec.mid} sends nothing (the offer says ${reversed(t.offerDirection)})`);
    }
    const line = this.#line(spec.mid);
    if (line.recv) throw new Error(`m-line ${spec.mid} has a receive track already`);
    if (line.send !== undefined && line.send !== spec.codec.payloadType) {
      throw new Error(`m-line ${spec.mid} sends payload type ${line.send}: it cannot receive ${spec.codec.payloadType} (one codec per m-line)`);
    }
    // With a send track the answered codec is already the send track's (its fmtp); else this one.
    if (line.send === undefined) narrow(t, answeredCodec(t, spec.mid, spec.codec.payloadType, spec.codec.fmtp));
    const subs: (() => void)[] = [];
    const track = new RecvRtpTrack(spec.mid, spec.codec, () => {
      for (const u of subs.splice(0)) u();
      this.#recvTracks.delete(track);
    });
    const listen = (remote: MediaStreamTrack) => {
      const sub = remote.onReceiveRtp.subscribe((rtp) => {
        const h = rtp.header;
        track.receive({ payloadType: h.payloadType, sequenceNumber: h.sequenceNumber, timestamp: h.timestamp, ssrc: h.ssrc, marker: h.marker, payload: rtp.payload });
      });
      subs.push(sub.unSubscribe);
    };
    // One receiving track per SSRC the offer named; more may come later (werift adds them then).
    for (const remote of t.receiver.tracks) listen(remote);
    subs.push(t.onTrack.subscribe((remote) => listen(remote)).unSubscribe);
    this.#recvTracks.add(track);
    line.recv = track;
    this.#direct(t, line);
    return track;
  }

  #line(mid: string): { send?: number; recv?: RecvRtpTrack } {
    let line = this.#lines.get(mid);
    if (!line) this.#lines.set(mid, (line = {}));
    return line;
  }

  #direct(t: RTCRtpTransceiver, line: { send?: number; recv?: RecvRtpTrack }): void {
    t.setDirection(line.send !== undefined && line.recv ? 'sendrecv' : line.recv ? 'recvonly' : 'sendonly');
  }

  async createAnswer(): Promise<string> {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('createAnswer before setRemoteOffer');
    if (this.#answered) throw new Error('answer already created');
    const answer = await pc.createAnswer();
    this.#assertOpen();
    this.#answered = pc.setLocalDescription(answer).then(() => undefined);
    // gatheringComplete() reports a failure; until someone asks, it must not be unhandled.
    this.#answered.catch(() => undefined);
    return withExtraCandidates(answer.sdp, this.settings.candidates);
  }

  gatheringComplete(): Promise<void> {
    if (!this.#answered) return Promise.reject(new Error('gatheringComplete before createAnswer'));
    return this.#answered.then(() => {
      this.#assertOpen();
    });
  }

  localDescription(): string {
    const sdp = this.#pc?.localDescription?.sdp;
    if (!sdp) throw new Error('no local description yet');
    return withExtraCandidates(sdp, this.settings.candidates);
  }

  async addRemoteCandidate(c: IceCandidateInit | null): Promise<void> {
    const pc = this.#assertOpen();
    if (!pc) throw new Error('addRemoteCandidate before setRemoteOffer');
    await pc.addIceCandidate(c);
  }

  /** The STUN server each ICE agent will ask (none unless configured). */
  stunServers(): unknown[] {
    return (this.#pc?.iceTransports ?? []).map((t) => t.connection.stunServer);
  }

  remoteAddress(): string | undefined {
    for (const t of this.#pc?.iceTransports ?? []) {
      const a = t.connection.nominated?.remoteAddr;
      if (a) return a[0].includes(':') ? `[${a[0]}]:${a[1]}` : `${a[0]}:${a[1]}`;
    }
    return undefined;
  }

  #config(offer: string): RTCPeerConnectionConfig {
    const s = this.settings;
    const codecs: { audio: RTCRtpCodecParameters[]; video: RTCRtpCodecParameters[] } = { audio: [], video: [] };
    for (const m of SessionDescription.parse(offer).media) {
      if (m.kind !== 'audio' && m.kind !== 'video') continue;
      const list = codecs[m.kind];
      for (const c of m.rtp.codecs) {
        if (NOT_ANSWERED.has(c.name.toLowerCase())) continue;
        if (list.some((x) => x.mimeType.toLowerCase() === c.mimeType.toLowerCase())) continue;
        list.push(new RTCRtpCodecParameters({ mimeType: c.mimeType, clockRate: c.clockRate, channels: c.channels }));
      }
    }
    return {
      codecs,
      headerExtensions: { audio: [], video: [] },
      iceServers: s.iceServers.map((x) => ({ urls: x.urls, username: x.username, credential: x.credential })),
      icePortRange: s.portRange,
      ...(s.loopbackOnly ? { iceUseIpv4: false, iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'] } : {}),
      iceFilterStunResponse: () => {
        this.activity();
        return true;
      },
    };
  }

  #watch(pc: RTCPeerConnection): void {
    const subs = [
      pc.connectionStateChange.subscribe((s) => this.setState(s)),
      pc.iceConnectionStateChange.subscribe((s) => {
        // ICE can fail or lose consent while DTLS still counts as connected.
        if (s === 'disconnected' || s === 'failed' || s === 'closed') this.setState(s);
      }),
      pc.onIceCandidate.subscribe((c) => {
        if (this.closed) return;
        if (!c) {
          this.emit('candidate', null);
          return;
        }
        const init: IceCandidateInit = { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex };
        this.emit('candidate', init);
        for (const extra of extraCandidates(c.candidate, this.settings.candidates)) {
          this.emit('candidate', { ...init, candidate: extra } satisfies IceCandidateInit);
        }
      }),
    ];
    for (const s of subs) this.#unsubscribe.push(s.unSubscribe);
  }

  #assertOpen(): RTCPeerConnection | undefined {
    this.throwIfClosed();
    return this.#pc;
  }

  protected onClose(): Promise<void> | void {
    // Children first: the receiving tracks end (and unsubscribe) before the connection does.
    for (const r of [...this.#recvTracks]) r.close();
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    const pc = this.#pc;
    if (!pc) return;
    this.markClosed();
    const agents = pc.iceTransports.map((t) => t.connection);
    const closed = pc.close().catch(() => undefined);
    const gathered = this.#answered ?? Promise.resolve();
    return Promise.all([closed, gathered.catch(() => undefined)]).then(async () => {
      await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
    });
  }
}

/** The offered payload type as answered, with `fmtp` when given (else the offer's). */
function answeredCodec(t: RTCRtpTransceiver, mid: string, payloadType: number, fmtp: Record<string, string> | undefined): RTCRtpCodecParameters {
  const offered = t.codecs.find((c) => c.payloadType === payloadType);
  if (!offered) throw new Error(`m-line ${mid} has no payload type ${payloadType}`);
  return new RTCRtpCodecParameters({
    payloadType: offered.payloadType,
    mimeType: offered.mimeType,
    clockRate: offered.clockRate,
    channels: offered.channels,
    rtcpFeedback: offered.rtcpFeedback,
    parameters: fmtp ? fmtpLine(fmtp) : offered.parameters,
  });
}

/** The offer's own direction from werift's reversed one. */
function reversed(d: string): string {
  return d === 'sendonly' ? 'recvonly' : d === 'recvonly' ? 'sendonly' : d;
}

/** The transceiver answers and sends exactly this codec. */
function narrow(t: RTCRtpTransceiver, codec: RTCRtpCodecParameters): void {
  t.codecs = [codec];
  t.sender.codec = codec;
  t.sender.redRedundantPayloadType = undefined;
}

function fmtpLine(fmtp: Record<string, string>): string | undefined {
  const parts = Object.entries(fmtp).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(';') : undefined;
}
