// The WebRTC library behind a session, cut to what a viewer needs (our media out, a microphone
// in), so that werift and node-datachannel fit behind it. Order of use (answerer side):
//   peer = backend.createPeer(settings)
//   await peer.setRemoteOffer(sdp)
//   peer.addSendTrack({ mid, codec })   for each m-line we send on
//   peer.addRecvTrack({ mid, codec })   for each m-line we take the viewer's media from (its
//                                       microphone); the same m-line may have both (sendrecv).
//                                       m-lines with neither answer inactive
//   await peer.createAnswer()           the answer, applied locally; may lack candidates (trickle)
//   await peer.gatheringComplete()      then peer.localDescription() holds every local candidate
// Liveness is the session's: the peer reports state changes and inbound activity, nothing more.
import type { Owned } from '../../core/owned.js';
import type { Kind } from '../../core/media.js';
import type { RecvTrack } from './recv-track.js';
import type { WebRtcSettings } from './settings.js';

export type PeerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/** A payload type of the offer, answered as is. */
export interface SendCodec {
  payloadType: number;
  /** rtpmap encoding name, e.g. 'H264', 'opus', 'PCMA'. */
  name: string;
  clockRate: number;
  channels?: number;
  /** fmtp parameters to answer with. */
  fmtp?: Record<string, string>;
}

export interface SendTrackSpec {
  /** The offer m-line (a=mid) to send on. */
  mid: string;
  kind: Kind;
  codec: SendCodec;
}

/** One RTP packet to send; the track fills in SSRC and payload type. */
export interface RtpOut {
  /** The payload is head then body (RtpPayload). */
  head: Buffer;
  body: Buffer;
  marker: boolean;
  sequenceNumber: number;
  timestamp: number;
}

export interface SendTrack {
  readonly ssrc: number;
  readonly payloadType: number;
  /** Sends (encrypted) once connected; dropped before. Never keeps a reference to `p` itself. */
  write(p: RtpOut): void;
}

export interface RecvTrackSpec {
  /** The offer m-line (a=mid) to receive on; the offer must send on it (a=sendrecv or a=sendonly). */
  mid: string;
  kind: 'audio';
  /**
   * The one payload type answered for this m-line. With a send track on the same m-line, the same
   * payload type (an m-line answers one codec).
   */
  codec: SendCodec;
}

export type { RecvTrack, RecvTrackEvents, RecvTrackStats, RtpIn } from './recv-track.js';

export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string;
  sdpMLineIndex?: number;
}

/**
 * One peer connection. Owned by its session. Events:
 * 'state' (PeerState): connection state changes, ICE and DTLS together ('connected' = both done);
 * 'activity' (): a packet of any kind arrived from the remote (STUN, DTLS, SRTP, SRTCP);
 * 'candidate' (IceCandidateInit | null): a local candidate for trickle ICE, null when gathering ends.
 */
export interface WebRtcPeer extends Owned {
  readonly state: PeerState;
  setRemoteOffer(sdp: string): Promise<void>;
  addSendTrack(spec: SendTrackSpec): SendTrack;
  /**
   * Receives the viewer's RTP on an m-line: answered a=recvonly, or a=sendrecv with a send track
   * on it too (either order, both before createAnswer). Throws when the offer does not send on
   * that m-line, when a send track there has another payload type, or once answered. The track is
   * the peer's: it closes with it (the caller may close it earlier to stop receiving).
   */
  addRecvTrack(spec: RecvTrackSpec): RecvTrack;
  createAnswer(): Promise<string>;
  gatheringComplete(): Promise<void>;
  /** The local description with every candidate gathered so far (plus configured extra ones). */
  localDescription(): string;
  /** null = end of candidates. */
  addRemoteCandidate(c: IceCandidateInit | null): Promise<void>;
  /** Writes queued in the library that the socket has not taken yet (a slow-consumer signal). */
  readonly pendingWrites: number;
  /** The remote address of the selected ICE pair, 'ip:port', once connected. */
  remoteAddress(): string | undefined;
}

/** Listener signatures of the peer's events (EventEmitter's own typing is untyped). */
export interface PeerEventListeners {
  state: (s: PeerState) => void;
  activity: () => void;
  candidate: (c: IceCandidateInit | null) => void;
}

export interface WebRtcBackend {
  readonly name: string;
  createPeer(settings: WebRtcSettings): WebRtcPeer;
}

/**
 * go2rtc's `webrtc.candidates`: addresses the host is reached at from outside (a public IP with
 * a forwarded port, a Docker host address). 'ip' takes the port of the real host candidate it
 * stands for, 'ip:port' a fixed one. Returns the candidate attribute values (without 'a=').
 */
export function extraCandidates(hostCandidate: string, extra: readonly string[]): string[] {
  const parts = hostCandidate.replace(/^a=/, '').replace(/^candidate:/, '').split(' ');
  // foundation component transport priority ip port typ host ...
  const [, component, transport, , , port, typ, type] = parts;
  if (transport?.toLowerCase() !== 'udp' || typ !== 'typ' || type !== 'host' || !port) return [];
  return extra.flatMap((spec, i) => {
    const a = parseAddress(spec);
    if (!a) return [];
    // Below the real host candidates: a peer on the same network should keep using those.
    const priority = (126 << 24) + ((65534 - i) << 8) + (256 - Number(component ?? 1));
    return [`candidate:x${i} ${component ?? 1} udp ${priority >>> 0} ${a.ip} ${a.port ?? port} typ host`];
  });
}

function parseAddress(spec: string): { ip: string; port?: string } | undefined {
  const s = spec.trim();
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { ip: v6[1]!, port: v6[2] };
  const v4 = /^([^:\s]+)(?::(\d+))?$/.exec(s);
  if (v4) return { ip: v4[1]!, port: v4[2] };
  if (/^[0-9a-f:]+$/i.test(s)) return { ip: s };
  return undefined;
}

/** Adds the extra candidates to every m-section of an SDP, after its first UDP host candidate. */
export function withExtraCandidates(sdp: string, extra: readonly string[]): string {
  if (extra.length === 0) return sdp;
  const lines = sdp.split(/\r\n|\n/);
  const out: string[] = [];
  let added = false;
  for (const line of lines) {
    if (line.startsWith('m=')) added = false;
    out.push(line);
    if (!added && line.startsWith('a=candidate:')) {
      const more = extraCandidates(line, extra);
      if (more.length) {
        out.push(...more.map((c) => `a=${c}`));
        added = true;
      }
    }
  }
  return out.join('\r\n');
}
