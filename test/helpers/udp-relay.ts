// A UDP relay between a WebRTC viewer and camrelay on loopback: the viewer is given the relay's
// address as camrelay's only candidate, and every datagram either way goes through it. It stamps
// each datagram from the viewer (what camrelay receives) with its arrival time and kind, and can
// drop everything both ways for a while: a Wi-Fi hiccup, a viewer's UDP stalled.
import dgram from 'node:dgram';

export type DatagramKind = 'stun' | 'dtls' | 'rtcp' | 'rtp' | 'other';

/** RFC 7983's demultiplexing by first byte, and RTCP by payload type 192–223 (RFC 5761). */
export function kindOf(b: Buffer): DatagramKind {
  const f = b[0] ?? 0;
  if (f <= 3) return 'stun';
  if (f >= 20 && f <= 63) return 'dtls';
  if (f >= 128 && f <= 191) {
    const pt = b[1] ?? 0;
    return pt >= 192 && pt <= 223 ? 'rtcp' : 'rtp';
  }
  return 'other';
}

export interface Arrival {
  /** performance.timeOrigin + performance.now(), ms: comparable with camrelay's log `time`. */
  at: number;
  kind: DatagramKind;
}

export class UdpRelay {
  /** Datagrams from the viewer towards camrelay, in order (dropped ones are not in it). */
  readonly fromViewer: Arrival[] = [];
  /** Datagrams camrelay sent to the viewer. */
  toViewer = 0;
  #front: dgram.Socket;
  /** One socket towards camrelay per viewer address: camrelay sees each as its own peer. */
  #backs = new Map<string, dgram.Socket>();
  #dropUntil = 0;

  /** Where the viewer's datagrams go: camrelay's candidate, known once it answered. */
  target: { host: string; port: number } | undefined;

  private constructor(front: dgram.Socket) {
    this.#front = front;
    front.on('message', (msg, from) => this.#fromViewer(msg, from));
  }

  static async start(): Promise<UdpRelay> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return new UdpRelay(s);
  }

  get port(): number {
    return this.#front.address().port;
  }

  /** Drops every datagram, both ways, for `ms` from now. */
  stall(ms: number): void {
    this.#dropUntil = performance.now() + ms;
  }

  /** The latest arrival from the viewer, optionally of some kinds only. */
  last(kinds?: DatagramKind[]): number | undefined {
    for (let i = this.fromViewer.length - 1; i >= 0; i--) {
      const a = this.fromViewer[i]!;
      if (!kinds || kinds.includes(a.kind)) return a.at;
    }
    return undefined;
  }

  /** The largest gap (ms) between successive arrivals of these kinds between `from` and `to` (epoch ms). */
  largestGap(kinds: DatagramKind[] | undefined, from: number, to: number): number {
    const times = this.fromViewer.filter((a) => a.at >= from && a.at <= to && (!kinds || kinds.includes(a.kind))).map((a) => a.at);
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    return gap;
  }

  #fromViewer(msg: Buffer, from: dgram.RemoteInfo): void {
    if (performance.now() < this.#dropUntil || !this.target) return;
    this.fromViewer.push({ at: performance.timeOrigin + performance.now(), kind: kindOf(msg) });
    const key = `${from.address}:${from.port}`;
    let back = this.#backs.get(key);
    if (!back) {
      const b = dgram.createSocket('udp4');
      back = b;
      b.bind(0, '127.0.0.1');
      b.on('message', (m) => {
        if (performance.now() < this.#dropUntil) return;
        this.toViewer++;
        this.#front.send(m, from.port, from.address);
      });
      this.#backs.set(key, b);
    }
    back.send(msg, this.target.port, this.target.host);
  }

  close(): void {
    for (const b of this.#backs.values()) b.close();
    this.#backs.clear();
    this.#front.close();
  }
}

/** The SDP without its candidate lines: the peer then learns the other side only from its checks. */
export function withoutCandidates(sdp: string): string {
  return sdp
    .split(/\r?\n/)
    .filter((l) => !l.startsWith('a=candidate:') && !l.startsWith('a=end-of-candidates'))
    .join('\r\n');
}

/** camrelay's answer with its candidates replaced by one host candidate at the relay, and where they pointed. */
export function answerViaRelay(sdp: string, relayPort: number): { sdp: string; target: { host: string; port: number } } {
  let target: { host: string; port: number } | undefined;
  const out: string[] = [];
  for (const l of sdp.split(/\r?\n/)) {
    if (!l.startsWith('a=candidate:')) {
      out.push(l);
      continue;
    }
    const m = /^a=candidate:\S+ 1 udp \d+ (\d+\.\d+\.\d+\.\d+) (\d+) typ host/i.exec(l);
    if (m && !target) {
      target = { host: m[1]!, port: Number(m[2]) };
      out.push(`a=candidate:1 1 udp 2130706431 127.0.0.1 ${relayPort} typ host`);
    }
  }
  if (!target) throw new Error('the answer has no IPv4 host candidate');
  return { sdp: out.join('\r\n'), target };
}
