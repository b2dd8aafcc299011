import { describeTrack, type Track } from '../core/media.js';
import type { Logger } from '../core/log.js';
import { errorMessage } from '../core/errors.js';
import type { RtspRequest } from './message.js';
import type { Publisher, PublishSlot } from './publish-slot.js';
import { RtpReceiver, trackFromMedia } from './receiver.js';
import { parseSdp, resolveControl, type SdpMedia } from './sdp.js';
import { formatInterleavedTransport, parseTransport } from './transport.js';

// The publishing side of one connection (RFC 2326 ANNOUNCE → SETUP per media → RECORD), with
// RTP interleaved on the TCP connection. Holds no OS resources: the connection owns the socket.

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer;
}

/** An ANNOUNCE refused: the reply to send and why the slot cannot be used. */
export interface Refusal extends Reply {
  why: string;
  /** Retrying the same publisher would fail the same way (it offers nothing we carry). */
  permanent: boolean;
}

interface Media {
  sdp: SdpMedia;
  /** Absolute control URL that SETUP must name. */
  url: string;
  /** Undefined for a codec we do not carry: SETUP still succeeds, its data is dropped. */
  receiver?: RtpReceiver;
  channels?: [number, number];
}

function stripSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

export class PublishSession {
  #media: Media[] = [];
  /** channel → media; odd RTCP channels map too, flagged. */
  #channels = new Map<number, { media: Media; rtcp: boolean }>();
  #recording = false;

  private constructor(
    readonly slot: PublishSlot,
    private readonly publisher: Publisher,
    private readonly log: Logger,
  ) {}

  /**
   * Parses the ANNOUNCE body. Returns the session, or a Refusal (bad SDP, nothing we can carry)
   * after which the caller ends the connection and the slot with it.
   */
  static announce(req: RtspRequest, slot: PublishSlot, publisher: Publisher, log: Logger): PublishSession | Refusal {
    const type = req.headers.get('content-type');
    if (type && !/^application\/sdp\b/i.test(type)) return { status: 415, why: `ANNOUNCE body is ${type}, not SDP`, permanent: true };
    const session = new PublishSession(slot, publisher, log);
    let media: SdpMedia[];
    let base = stripSlash(req.url);
    try {
      const sdp = parseSdp(req.body.toString('utf8'));
      media = sdp.media;
      const cb = req.headers.get('content-base');
      if (cb) base = stripSlash(cb);
      // A session-level absolute control URL is the base for the media ones.
      if (sdp.control && /^rtsps?:\/\//i.test(sdp.control)) base = stripSlash(sdp.control);
    } catch (e) {
      log.warn({ err: errorMessage(e), errName: (e as Error).name }, 'ANNOUNCE with an unusable SDP');
      return { status: 400, why: `unusable SDP: ${errorMessage(e)}`, permanent: true };
    }
    for (const m of media) {
      const track = trackFromMedia(m);
      const entry: Media = { sdp: m, url: stripSlash(resolveControl(base, m.control)) };
      if (track) {
        entry.receiver = new RtpReceiver(track, m.payloadType, (f) => slot.deliver(publisher, f), log.child({ track: describeTrack(track) }));
      } else {
        log.warn({ kind: m.kind, codec: m.codec ?? `payload type ${m.payloadType}` }, 'publisher offers a codec camrelay does not carry; ignoring that media');
      }
      session.#media.push(entry);
    }
    if (!session.#media.some((m) => m.receiver)) {
      const offered = media.map((m) => `${m.kind}:${m.codec ?? m.payloadType}`).join(', ') || 'no media';
      return { status: 415, why: `publisher offers no codec camrelay carries (${offered})`, permanent: true };
    }
    return session;
  }

  get tracks(): Track[] {
    return this.#media.flatMap((m) => (m.receiver ? [m.receiver.track] : []));
  }

  setup(req: RtspRequest): Reply {
    if (this.#recording) return { status: 455 };
    const url = stripSlash(req.url);
    const media = this.#media.find((m) => m.url === url) ?? this.#bySuffix(url);
    if (!media) return { status: 404 };
    const specs = parseTransport(req.headers.get('transport') ?? '');
    const tcp = specs.find((s) => s.tcp && s.unicast);
    // Only interleaved TCP: UDP on loopback drops keyframe bursts (see DESIGN.md).
    if (!tcp) return { status: 461 };
    if (media.channels) for (const ch of media.channels) this.#channels.delete(ch);
    const wanted = tcp.interleaved;
    const channels: [number, number] =
      wanted && !this.#channels.has(wanted[0]) && !this.#channels.has(wanted[1]) ? wanted : this.#freePair();
    media.channels = channels;
    this.#channels.set(channels[0], { media, rtcp: false });
    this.#channels.set(channels[1], { media, rtcp: true });
    return { status: 200, headers: { Transport: formatInterleavedTransport(channels, 'record') } };
  }

  record(): Reply {
    if (this.#recording) return { status: 200 };
    if (!this.#media.some((m) => m.channels && m.receiver)) return { status: 455 };
    this.#recording = true;
    const tracks = this.#media.filter((m) => m.channels && m.receiver).map((m) => m.receiver!.track);
    this.log.info({ tracks: tracks.map(describeTrack) }, 'publisher recording');
    this.slot.recording(this.publisher, tracks);
    return { status: 200 };
  }

  /** False when the channel was never set up (a protocol error the caller closes for). */
  interleaved(channel: number, payload: Buffer): boolean {
    const c = this.#channels.get(channel);
    if (!c) return false;
    // RTCP (sender reports) is not needed for publishing; RTP before RECORD has nowhere to go.
    if (c.rtcp || !this.#recording || !c.media.receiver) return true;
    c.media.receiver.push(payload);
    return true;
  }

  #bySuffix(url: string): Media | undefined {
    // Clients that rewrite the host part still end in the control attribute.
    return this.#media.find((m) => m.sdp.control && url.endsWith('/' + m.sdp.control.replace(/^\/+/, '')));
  }

  #freePair(): [number, number] {
    let c = 0;
    while (this.#channels.has(c) || this.#channels.has(c + 1)) c += 2;
    return [c, c + 1];
  }
}
