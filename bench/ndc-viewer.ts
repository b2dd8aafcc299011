// A WebRTC viewer for the benchmarks: a node-datachannel (libdatachannel, native) peer that offers
// recvonly H.264 to camrelay's POST /api/webrtc and only counts what arrives: packets, bytes,
// frames, sequence gaps, and when the first whole keyframe was in. No decoding, so that fifty of
// them cost a small part of what the camrelay they watch spends (werift peers would cost more
// than camrelay itself).
import { performance } from 'node:perf_hooks';
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { request } from '../test/helpers/http.js';

const { PeerConnection: PC, Video } = nodeDataChannel;

/** Main and Constrained Baseline, as browsers offer them. */
const H264_OFFERS: [number, string][] = [
  [96, 'profile-level-id=4d001f;packetization-mode=1;level-asymmetry-allowed=1'],
  [97, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1'],
];

export interface ViewerTimes {
  /** performance.now() of each step; undefined until it happened. */
  offerSent?: number;
  answered?: number;
  connected?: number;
  firstPacket?: number;
  /** The last packet (marker) of the first keyframe arrived. */
  firstKeyframe?: number;
}

export class NdcViewer {
  readonly times: ViewerTimes = {};
  packets = 0;
  bytes = 0;
  /** Frames completed (packets with the marker bit). */
  frames = 0;
  keyframes = 0;
  /** Called for every RTP packet (not RTCP), with its arrival time. */
  onRtp: ((pkt: Buffer, at: number) => void) | undefined;
  #pc: PeerConnection;
  #track: Track | undefined;
  #location: string | undefined;
  #firstSeq = -1;
  #lastSeq = -1;
  #cycles = 0;
  #frameTs = -1;
  #frameKey = false;
  #keyframeWaiters = new Set<() => void>();
  #closed = false;
  /** Resolves when the native side has delivered 'closed': only then may cleanup() run. */
  #nativeClosed: Promise<void>;

  /**
   * `candidatesInOffer: false` sends the offer without our candidates (see connect()): for many
   * viewers joining back to back, not for timing a first frame (it adds an ICE round and now and
   * then a retransmission).
   */
  constructor(
    readonly name = 'viewer',
    private readonly candidatesInOffer = true,
  ) {
    // bindAddress: host candidates on loopback only, as camrelay's loopback_only answers.
    const pc = new PC(name, { iceServers: [], bindAddress: '127.0.0.1' });
    this.#pc = pc;
    this.#nativeClosed = new Promise((resolve) =>
      pc.onStateChange((s) => {
        if (s === 'connected' && this.times.connected === undefined) this.times.connected = performance.now();
        if (s === 'closed') resolve();
      }),
    );
  }

  /** Packets the sequence numbers say were sent since the first one received, but never came. */
  get lost(): number {
    if (this.#firstSeq < 0) return 0;
    const expected = this.#cycles * 65536 + this.#lastSeq - this.#firstSeq + 1;
    return Math.max(0, expected - this.packets);
  }

  /** Offers, posts the offer (application/sdp, WHEP-style) and applies the answer. */
  async connect(base: string, src: string, timeoutMs = 15000): Promise<void> {
    const pc = this.#pc;
    const video = new Video('0', 'RecvOnly');
    for (const [pt, fmtp] of H264_OFFERS) video.addH264Codec(pt, fmtp);
    const track = pc.addTrack(video);
    this.#track = track;
    track.onMessage((msg: Buffer) => this.#onMessage(msg));
    const gathered = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('ICE gathering did not complete')), timeoutMs);
      pc.onGatheringStateChange((s) => {
        if (s === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
    pc.setLocalDescription();
    await gathered;
    const full = pc.localDescription()?.sdp;
    if (!full) throw new Error('no local offer');
    // With our candidates in the offer, camrelay starts its connectivity checks before our
    // answer is applied, and libdatachannel (as the offerer) then now and then drops its ICE
    // transport ("Got a remote candidate without ICE transport": about one offer in ten with 30
    // viewers joining back to back on this machine; see connectViewer). Without them, our checks
    // reach camrelay's candidate from the answer and camrelay learns our address from them
    // (peer-reflexive), as with a browser whose offer goes before its candidates (trickle).
    // A second race of the same origin: libdatachannel hands the answer to its ICE agent before it
    // stores it for the DTLS fingerprint check. When camrelay's early checks let ICE and then DTLS
    // finish inside that gap (a busy viewer process), our side rejects camrelay's certificate
    // ("certificate verify failed" here, "DTLS alert: unknown CA" in camrelay's log): seen in 3
    // of 10 runs of 10 viewers joining back to back. Without candidates in the offer nothing
    // can start before the answer is stored.
    const offer = this.candidatesInOffer
      ? full
      : full
          .split('\r\n')
          .filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates')
          .join('\r\n');
    this.times.offerSent = performance.now();
    const r = await request(`${base}/api/webrtc?src=${encodeURIComponent(src)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: offer,
      timeoutMs,
    });
    if (r.status >= 300) throw new Error(`POST /api/webrtc: HTTP ${r.status}: ${r.text}`);
    this.#location = typeof r.headers.location === 'string' ? r.headers.location : undefined;
    this.times.answered = performance.now();
    pc.setRemoteDescription(r.text, 'answer');
  }

  /** Resolves when the first whole keyframe has arrived; rejects after `ms`. */
  firstKeyframe(ms: number): Promise<number> {
    if (this.times.firstKeyframe !== undefined) return Promise.resolve(this.times.firstKeyframe);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(t);
        this.#keyframeWaiters.delete(done);
        resolve(this.times.firstKeyframe!);
      };
      const t = setTimeout(() => {
        this.#keyframeWaiters.delete(done);
        reject(new Error(`${this.name}: no keyframe within ${ms} ms (packets ${this.packets}, state ${this.#pc.state()})`));
      }, ms);
      this.#keyframeWaiters.add(done);
    });
  }

  get state(): string {
    return this.#closed ? 'closed' : this.#pc.state();
  }

  /**
   * Ends the session explicitly: DELETE on the session's Location (what a WHEP client does), then
   * the local peer. Returns the performance.now() at which the DELETE was sent.
   */
  async close(base?: string): Promise<number> {
    const sent = performance.now();
    if (this.#closed) return sent;
    this.#closed = true;
    const del = base && this.#location ? request(base + this.#location, { method: 'DELETE', timeoutMs: 5000 }).catch(() => undefined) : undefined;
    this.#track?.close();
    this.#pc.close();
    await del;
    await Promise.race([this.#nativeClosed, new Promise((r) => setTimeout(r, 3000).unref())]);
    return sent;
  }

  #onMessage(msg: Buffer): void {
    const at = performance.now();
    // RTCP (SR, SDES) shares the track: its packet types 200-207 sit where an RTP byte 1 has
    // payload type 72-79 with the marker bit, which H.264 here never uses.
    if (msg.length < 12 || (msg[1]! >= 200 && msg[1]! <= 207)) return;
    this.packets++;
    this.bytes += msg.length;
    this.times.firstPacket ??= at;
    const seq = msg.readUInt16BE(2);
    if (this.#firstSeq < 0) this.#firstSeq = seq;
    else if (seq < this.#lastSeq && this.#lastSeq - seq > 32768) this.#cycles++;
    if (this.#lastSeq < 0 || ((seq - this.#lastSeq) & 0xffff) < 32768) this.#lastSeq = seq;
    const ts = msg.readUInt32BE(4);
    if (ts !== this.#frameTs) {
      this.#frameTs = ts;
      this.#frameKey = false;
    }
    const cc = msg[0]! & 0x0f;
    const ext = (msg[0]! & 0x10) !== 0;
    let off = 12 + cc * 4;
    if (ext && msg.length >= off + 4) off += 4 + msg.readUInt16BE(off + 2) * 4;
    if (off < msg.length && hasIdr(msg.subarray(off))) this.#frameKey = true;
    this.onRtp?.(msg, at);
    if ((msg[1]! & 0x80) === 0) return;
    this.frames++;
    if (!this.#frameKey) return;
    this.keyframes++;
    if (this.times.firstKeyframe === undefined) {
      this.times.firstKeyframe = at;
      for (const w of [...this.#keyframeWaiters]) w();
    }
  }
}

/**
 * A connected viewer. Should libdatachannel, as the offering side, still reject a well-formed
 * answer ("Got a remote candidate without ICE transport", see connect()), the attempt is closed
 * and the viewer tries again with a new peer, at most `attempts` times in all. `retries` says
 * how often that happened.
 */
export async function connectViewer(
  name: string,
  base: string,
  src: string,
  attempts = 3,
  candidatesInOffer = true,
): Promise<{ viewer: NdcViewer; retries: number }> {
  for (let i = 0; ; i++) {
    const v = new NdcViewer(i ? `${name}#${i}` : name, candidatesInOffer);
    try {
      await v.connect(base, src);
      return { viewer: v, retries: i };
    } catch (e) {
      await v.close(base);
      if (i + 1 >= attempts || !/remote candidate without ICE transport/.test(String(e))) throw e;
    }
  }
}

/** The RTP payload (RFC 6184) carries the start of an IDR slice, alone, in a STAP-A or as FU-A start. */
function hasIdr(p: Buffer): boolean {
  const t = p[0]! & 0x1f;
  if (t === 5) return true;
  if (t === 28) return p.length > 1 && (p[1]! & 0x80) !== 0 && (p[1]! & 0x1f) === 5;
  if (t === 24) {
    for (let i = 1; i + 2 < p.length; ) {
      const size = p.readUInt16BE(i);
      if ((p[i + 2]! & 0x1f) === 5) return true;
      i += 2 + size;
    }
  }
  return false;
}

/**
 * Why a failed viewer failed, when the cause is on the viewer's side (see connect()): for the
 * benchmarks' notes on runs done again. undefined when the text shows no such cause.
 */
function viewerSideCause(failure: string): string | undefined {
  if (/unknown CA/i.test(failure)) {
    return 'the viewer (libdatachannel as offerer) checked camrelay\'s DTLS certificate before it had stored camrelay\'s answer, and so rejected it (bench/ndc-viewer.ts, connect())';
  }
  if (/remote candidate without ICE transport/.test(failure)) return 'libdatachannel as offerer dropped its ICE transport (bench/ndc-viewer.ts, connect())';
  return undefined;
}

/** A failed run for a report: one line, with its viewer-side cause when there is one. */
export function describeFailure(failure: string): string {
  const line = failure.replace(/\s+/g, ' ');
  const cause = viewerSideCause(failure);
  return cause ? `${line} [cause: ${cause}]` : line;
}

/**
 * node-datachannel keeps a process alive until this runs. It crashed (SIGSEGV) here even with
 * every peer closed and its 'closed' delivered, so the bench's processes end with process.exit()
 * instead; this is for scripts that want a natural exit.
 */
export function ndcCleanup(): void {
  nodeDataChannel.cleanup();
}
