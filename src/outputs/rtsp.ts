// One RTSP player (VLC, ffmpeg, an NVR, Home Assistant's recorder): a consumer of a stream that
// the RTSP server creates at DESCRIBE. It attaches at once (which starts the source lazily),
// answers with the stream's tracks, and after PLAY sends each frame as RTP with its own SSRC,
// sequence numbers and timestamps, over the TCP connection (interleaved) or UDP.
import { randomBytes, randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Owned } from '../core/owned.js';
import { CloseReason } from '../core/close-reason.js';
import { SourceError, StartTimeoutError, errorMessage } from '../core/errors.js';
import { log, maskCredentials, type Logger } from '../core/log.js';
import { describeTrack, type Frame, type Kind, type MediaRequest, type Track } from '../core/media.js';
import { replayCatchUp, type CatchUpSource, type Consumer, type ConsumerInfo } from '../core/consumer.js';
import { KeyframeGate } from '../core/delivery-gate.js';
import { codecFormat } from '../codecs/table.js';
import type { RtpPayload } from '../rtp/payload.js';
import { writeRtpHeader } from '../rtp/packet.js';
import { senderReport } from '../rtp/rtcp.js';
import { RtpTimeline } from '../rtp/timeline.js';
import { describeTracks, type ServedMedia } from '../rtsp/describe.js';
import { trackIdOf } from '../rtsp/play-url.js';
import { PlayError, type PlayerContext, type PlayerFactory, type PlayerReply, type RtspPlayer } from '../rtsp/player.js';
import type { TransportSpec } from '../rtsp/transport.js';
import { PlayerUdpPair } from '../rtsp/player-udp-pair.js';

export interface AttachableStream extends CatchUpSource {
  readonly name: string;
  attach(c: Consumer): Promise<readonly Track[]>;
}

export interface StreamLookup {
  get(name: string): AttachableStream | undefined;
}

/** The player factory the RTSP server is given: one RtspConsumer per DESCRIBE of a known stream. */
export function rtspPlayers(streams: StreamLookup): PlayerFactory {
  return {
    open(ctx) {
      const s = streams.get(ctx.stream);
      return s ? new RtspConsumer(s, ctx) : undefined;
    },
  };
}

type LaneTransport = { kind: 'tcp'; channels: [number, number] } | { kind: 'udp'; ports: [number, number] };

/** One served track: what this player's RTP for it looks like. */
interface Lane {
  media: ServedMedia;
  ssrc: number;
  timeline: RtpTimeline;
  transport?: LaneTransport;
  /** Video waits for a keyframe after PLAY; audio always passes. */
  gate: KeyframeGate;
  packets: number;
  bytes: number;
  /** The last frame sent: its RTP timestamp and wall-clock time, for sender reports. */
  last?: { rtpTimestamp: number; wallMs: number };
}

/** Interleaved `$` prefix (4 bytes) + RTP fixed header (12 bytes). */
const TCP_HEADER = 16;
const RTP_HEADER = 12;
/** An interleaved frame carries at most 65535 bytes. */
const MAX_RTP_PACKET = 0xffff;
/** RFC 3550 6.2's minimum interval; the first report goes with a track's first frame. */
const SENDER_REPORT_MS = 5000;

type State = 'describing' | 'ready' | 'playing' | 'paused';

/** For each kind the player asked for, the stream's track in its order of preference. */
function chooseTracks(tracks: readonly Track[], request: MediaRequest): Track[] {
  const out: Track[] = [];
  for (const kind of ['video', 'audio'] as const) {
    for (const codec of request[kind] ?? []) {
      const t = tracks.find((x) => x.kind === kind && x.codec.name === codec && codecFormat(codec) !== undefined);
      if (t) {
        out.push(t);
        break;
      }
    }
  }
  return out;
}

function playError(e: unknown, stream: string): PlayError {
  if (e instanceof PlayError) return e;
  const msg = maskCredentials(errorMessage(e));
  if (e instanceof SourceError && e.permanent) return new PlayError(404, `stream "${stream}" cannot start: ${msg}`);
  if (e instanceof StartTimeoutError) return new PlayError(503, msg);
  return new PlayError(503, `stream "${stream}": ${msg}`);
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export class RtspConsumer extends Owned implements Consumer, RtspPlayer {
  readonly id = randomBytes(9).toString('base64url');
  readonly request: MediaRequest;
  readonly internal: boolean;
  readonly createdAt = Date.now();
  /** Why the session ended, for logs and the API; undefined while open. */
  closeReason: string | undefined;
  #state: State = 'describing';
  #lanes: Lane[] = [];
  #udp: PlayerUdpPair | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reportTimer: NodeJS.Timeout | undefined;
  #lastActivity = performance.now();
  #warnedCodec = new Set<Kind>();
  #log: Logger;

  constructor(
    private readonly stream: AttachableStream,
    private readonly ctx: PlayerContext,
  ) {
    super('RtspConsumer');
    this.request = ctx.request;
    this.internal = ctx.internal ?? false;
    this.#log = log.child({ stream: stream.name, session: this.id, remote: ctx.remote });
  }

  async describe(): Promise<string> {
    if (this.closed) throw new PlayError(503, `session closed: ${this.closeReason}`);
    let tracks: readonly Track[];
    try {
      tracks = await this.stream.attach(this);
    } catch (e) {
      const err = playError(e, this.stream.name);
      this.close(err);
      throw err;
    }
    if (this.closed) throw new PlayError(503, `session closed while starting: ${this.closeReason}`);
    const served = chooseTracks(tracks, this.request);
    if (served.length === 0) {
      const have = tracks.map(describeTrack).join(', ') || 'no tracks';
      const want = [...(this.request.video ?? []), ...(this.request.audio ?? [])].join(', ') || 'nothing';
      const err = new PlayError(404, `stream "${this.stream.name}" has ${have}; the URL asks for ${want}`);
      this.close(err);
      throw err;
    }
    const { media, sdp } = describeTracks(served, this.stream.name);
    this.#lanes = media.map((m) => ({
      media: m,
      ssrc: randomInt(2 ** 32),
      timeline: new RtpTimeline(m.sdp.clockRate),
      gate: new KeyframeGate(),
      packets: 0,
      bytes: 0,
    }));
    this.#state = 'ready';
    // The session timeout runs from the answer: waiting for the source is not the player's silence.
    this.touch();
    this.#armTimeout(this.ctx.sessionTimeoutMs);
    this.#log.info({ tracks: served.map(describeTrack), userAgent: this.ctx.userAgent }, 'rtsp session opened');
    return sdp;
  }

  async setup(url: string, transports: TransportSpec[]): Promise<PlayerReply> {
    if (this.#state === 'describing' || this.closed) return { status: 455 };
    if (this.#state !== 'ready') return { status: 455, reason: 'Method Not Valid in This State: SETUP after PLAY' };
    const id = trackIdOf(url) ?? (this.#lanes.length === 1 ? 0 : undefined);
    const lane = id === undefined ? undefined : this.#lanes[id];
    if (!lane) return { status: 404, reason: 'Not Found: no such track' };
    for (const t of transports) {
      if (!t.unicast || t.mode === 'record') continue;
      if (t.tcp) {
        const channels = this.#channelsFor(lane, t.interleaved);
        lane.transport = { kind: 'tcp', channels };
        return { status: 200, headers: { Transport: `RTP/AVP/TCP;unicast;interleaved=${channels[0]}-${channels[1]};ssrc=${hex8(lane.ssrc)}` } };
      }
      if (/^RTP\/AVP(\/UDP)?$/.test(t.protocol) && t.clientPort) {
        const udp = (this.#udp ??= this.#makeUdp());
        try {
          await udp.bind();
        } catch (e) {
          if (this.closed) return { status: 454 };
          this.#log.warn({ err: errorMessage(e) }, 'cannot bind UDP ports for a player');
          return { status: 500, reason: 'Internal Server Error: no UDP ports' };
        }
        if (this.closed) return { status: 454 };
        lane.transport = { kind: 'udp', ports: t.clientPort };
        const [a, b] = t.clientPort;
        return {
          status: 200,
          headers: { Transport: `RTP/AVP;unicast;client_port=${a}-${b};server_port=${udp.rtpPort}-${udp.rtcpPort};ssrc=${hex8(lane.ssrc)}` },
        };
      }
    }
    return { status: 461 };
  }

  play(): PlayerReply {
    if (this.closed || this.#state === 'describing' || !this.#lanes.some((l) => l.transport)) return { status: 455 };
    if (this.#state !== 'playing') {
      if (this.#state === 'ready') {
        const transports = this.#lanes.filter((l) => l.transport).map((l) => `${l.media.track.kind}:${l.transport!.kind}`);
        this.#log.info({ transports }, 'rtsp session playing');
      }
      this.#state = 'playing';
      // Video (re)starts at a keyframe: a decoder cannot begin anywhere else.
      for (const l of this.#lanes) l.gate.reset();
      // First PLAY only: after a PAUSE the GOP holds frames this player already had. The
      // microtask runs after the PLAY reply is written (the connection sends it on return).
      if (!this.#reportTimer) queueMicrotask(() => this.#startVideo());
      this.#reportTimer ??= setInterval(() => this.#sendReports(), SENDER_REPORT_MS);
    }
    return { status: 200, headers: { Range: 'npt=0.000-' } };
  }

  #startVideo(): void {
    const video = this.#lanes.find((l) => l.transport && l.media.track.kind === 'video');
    if (this.#state !== 'playing' || this.closed || !video || video.gate.open) return;
    replayCatchUp(this.stream, this);
  }

  pause(): PlayerReply {
    if (this.closed || this.#state === 'describing') return { status: 455 };
    if (this.#state === 'playing') this.#state = 'paused';
    return { status: 200 };
  }

  touch(): void {
    this.#lastActivity = performance.now();
  }

  interleaved(channel: number): boolean {
    const ours = this.#lanes.some((l) => l.transport?.kind === 'tcp' && l.transport.channels.includes(channel));
    if (ours) this.touch();
    return ours;
  }

  onFrame(frame: Frame): void {
    if (this.#state !== 'playing' || this.closed) return;
    const lane = this.#lanes.find((l) => l.transport && l.media.track.kind === frame.track.kind);
    if (!lane) return;
    const want = lane.media.track.codec;
    if (frame.track.codec.name !== want.name || frame.track.codec.clockRate !== want.clockRate) {
      // The source came back with another codec: the SDP this player has cannot describe it.
      if (!this.#warnedCodec.has(lane.media.track.kind)) {
        this.#warnedCodec.add(lane.media.track.kind);
        this.#log.warn({ served: describeTrack(lane.media.track), got: describeTrack(frame.track) }, 'dropping frames of another codec');
      }
      return;
    }
    if (!lane.gate.admit(frame)) return;
    // The lane's codec, checked above: its table entry packetizes (once per frame, for all players).
    const payloads = codecFormat(want.name)!.packetize(frame);
    if (payloads.length === 0) return;
    const first = !lane.last;
    this.#send(lane, frame, payloads);
    if (first && !this.closed) this.#sendReport(lane);
  }

  #sendReports(): void {
    if (this.#state !== 'playing' || this.closed) return;
    for (const lane of this.#lanes) this.#sendReport(lane);
  }

  #sendReport(lane: Lane): void {
    const t = lane.transport;
    if (!t || !lane.last) return;
    const wallMs = Date.now();
    // Where this track's timeline is now: frames are sent as they arrive from a live source.
    const elapsed = ((wallMs - lane.last.wallMs) * lane.timeline.clockRate) / 1000;
    const sr = senderReport({
      ssrc: lane.ssrc,
      wallMs,
      rtpTimestamp: (lane.last.rtpTimestamp + Math.round(elapsed)) >>> 0,
      packets: lane.packets,
      octets: lane.bytes - RTP_HEADER * lane.packets,
    });
    if (t.kind === 'tcp') {
      const h = Buffer.from([0x24, t.channels[1], 0, sr.length]);
      this.ctx.sink.write([h, sr]);
    } else {
      this.#udp?.send('rtcp', [sr], t.ports[1]);
    }
  }

  #send(lane: Lane, frame: Frame, payloads: readonly RtpPayload[]): void {
    const timestamp = lane.timeline.timestamp(frame);
    lane.last = { rtpTimestamp: timestamp, wallMs: Date.now() };
    const t = lane.transport!;
    const pt = lane.media.payloadType;
    if (t.kind === 'tcp') {
      const chunks: Buffer[] = [];
      for (const p of payloads) {
        const size = RTP_HEADER + p.head.length + p.body.length;
        if (size > MAX_RTP_PACKET) continue;
        // The interleave prefix, the RTP header and the payload's head in one small buffer.
        const h = Buffer.allocUnsafe(TCP_HEADER + p.head.length);
        h[0] = 0x24;
        h[1] = t.channels[0];
        h.writeUInt16BE(size, 2);
        writeRtpHeader(h, 4, { marker: p.marker, payloadType: pt, sequenceNumber: lane.timeline.nextSequence(), timestamp, ssrc: lane.ssrc });
        p.head.copy(h, TCP_HEADER);
        chunks.push(h, p.body);
        lane.packets++;
        lane.bytes += size;
      }
      const sink = this.ctx.sink;
      sink.write(chunks);
      if (sink.writableLength > this.ctx.maxSendBuffer) {
        this.close(new CloseReason('slow_consumer', `player cannot keep up: ${sink.writableLength} bytes unsent (limit ${this.ctx.maxSendBuffer})`));
      }
      return;
    }
    const udp = this.#udp!;
    for (const p of payloads) {
      const size = RTP_HEADER + p.head.length + p.body.length;
      if (size > MAX_RTP_PACKET) continue;
      const h = Buffer.allocUnsafe(RTP_HEADER + p.head.length);
      writeRtpHeader(h, 0, { marker: p.marker, payloadType: pt, sequenceNumber: lane.timeline.nextSequence(), timestamp, ssrc: lane.ssrc });
      p.head.copy(h, RTP_HEADER);
      udp.send('rtp', [h, p.body], t.ports[0]);
      lane.packets++;
      lane.bytes += size;
    }
    if (udp.queuedBytes > this.ctx.maxSendBuffer) {
      this.close(new CloseReason('slow_consumer', `player cannot keep up: ${udp.queuedBytes} bytes queued for UDP (limit ${this.ctx.maxSendBuffer})`));
    }
  }

  #channelsFor(lane: Lane, wanted: [number, number] | undefined): [number, number] {
    const used = new Set(this.#lanes.filter((l) => l !== lane && l.transport?.kind === 'tcp').flatMap((l) => (l.transport as { channels: [number, number] }).channels));
    if (wanted && wanted[0] <= 255 && wanted[1] <= 255 && !used.has(wanted[0]) && !used.has(wanted[1])) return wanted;
    let c = 0;
    while (used.has(c) || used.has(c + 1)) c += 2;
    return [c, c + 1];
  }

  #makeUdp(): PlayerUdpPair {
    const udp = new PlayerUdpPair(this.ctx.localAddress, this.ctx.remoteAddress);
    // RTCP receiver reports (and ffmpeg's NAT punch packets) keep the session alive.
    udp.on('packet', () => this.touch());
    return udp;
  }

  // One timer, re-armed lazily: requests and RTCP only stamp #lastActivity.
  #armTimeout(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.closed) return;
      const limit = this.ctx.sessionTimeoutMs;
      const silent = performance.now() - this.#lastActivity;
      if (silent >= limit) this.close(new Error(`session timeout: nothing from the player for ${Math.round(silent)} ms`));
      else this.#armTimeout(limit - silent);
    }, Math.max(1, Math.ceil(ms)));
  }

  info(): ConsumerInfo {
    const lanes = this.#lanes.filter((l) => l.transport);
    const transport = lanes.some((l) => l.transport!.kind === 'udp') ? 'udp' : 'tcp';
    return {
      type: 'rtsp',
      id: this.id,
      remote_addr: this.ctx.remote,
      user_agent: this.ctx.userAgent,
      protocol: `rtsp+${transport}`,
      state: this.closed ? 'closed' : this.#state,
      created_at: new Date(this.createdAt).toISOString(),
      medias: this.#lanes.map((l) => `${l.media.track.kind}, sendonly, ${l.media.sdp.codec} pt ${l.media.payloadType}${l.transport ? `, ${l.transport.kind}` : ''}`),
      bytes_send: this.#lanes.reduce((n, l) => n + l.bytes, 0),
      packets_send: this.#lanes.reduce((n, l) => n + l.packets, 0),
      ...(this.closeReason ? { close_reason: this.closeReason } : {}),
    };
  }

  protected onClose(reason?: Error): Promise<void> {
    this.closeReason = reason?.message ?? 'closed';
    clearTimeout(this.#timer);
    clearInterval(this.#reportTimer);
    this.#timer = this.#reportTimer = undefined;
    const udp = this.#udp;
    udp?.removeAllListeners('packet');
    udp?.close();
    const i = this.info();
    this.#log.info({ reason: this.closeReason, bytes: i.bytes_send, packets: i.packets_send }, 'rtsp session closed');
    return udp ? udp.done : Promise.resolve();
  }
}
