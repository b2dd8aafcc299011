// Relay latency on the wire: a capture on loopback (bench/tcpdump.ts) timestamps, in the kernel,
// the camera's TCP segments into camrelay and camrelay's UDP packets out to each viewer, so the
// figure is camrelay's alone: no viewer's receive path, no bench event loop.
//
// In: the camera notes where each frame lies in its TCP stream (bench/relay-camera.ts); sequence
// numbers relative to the connection's SYN-ACK say which captured segment carried a frame's first
// byte and which its last.
// Out: SRTP leaves the RTP header in clear. Each viewer's video has its own SSRC, and camrelay
// gives it a timestamp that is the camera's plus a constant of that viewer's (src/rtp/timeline.ts);
// the viewer learns both from frames it matched by content (bench/relay.ts). A frame's packets to
// a viewer are then those of (SSRC, camera timestamp + offset): its first, and its marker packet.
import { readFileSync } from 'node:fs';
import { readPcap, TCP_ACK, TCP_SYN, type PcapPacket } from './pcap.js';
import type { Playback, WireFrame } from './relay-camera.js';

export interface ViewerRtp {
  /** The SSRC of the viewer's video and the offset of its RTP timestamps from the camera's; undefined when the viewer matched no frame. */
  ssrc?: number;
  offset?: number;
  /** Offsets seen, with how many frames showed each: one entry when the offset is constant. */
  offsets: Map<number, number>;
}

export interface WireSamples {
  /** ms from the camera's segment with the frame's last byte to the frame's marker packet to a viewer. */
  last: number[];
  lastKeyframes: number[];
  /** ms from the segment with the frame's first byte to the frame's first packet to a viewer. */
  first: number[];
  /**
   * Per frame, over its viewers (frames every viewer got only): last byte in → the frame's first
   * packet to any viewer (camrelay reading and depacketizing it), and that first packet → the
   * last viewer's marker packet (the fan-out, viewer after viewer).
   */
  reaction: number[];
  fanOut: number[];
  fanOutKeyframes: number[];
  /** frames in the window × viewers */
  expected: number;
  /** Pairs not measured: no in-time (segment not captured), no packet out to that viewer, or the viewer's SSRC/offset unknown. */
  missingIn: number;
  missingOut: number;
  viewersUnknown: number;
  /** Frames whose captured first segment shows '$' and the frame's RTP timestamp at its first byte: the offsets are right. */
  startsChecked: number;
  startsConfirmed: number;
  /** Frames sent to a known viewer whose timestamp less the offset is no frame of the camera: should be 0 (offset constant). */
  strayFrames: number;
  /** Viewers whose offset was not the same for every matched frame. */
  offsetChanges: number;
  tcpSegments: number;
  rtpPackets: number;
  /** TCP segments of unknown length (GSO over 64 KiB); should be 0. */
  unknownLength: number;
}

interface InTimes {
  first?: number;
  last?: number;
}

interface OutTimes {
  first: number;
  marker?: number;
}

export function analyseWire(
  file: string,
  cameraPort: number,
  playbacks: readonly Playback[],
  inWindow: (f: WireFrame) => boolean,
  viewers: readonly ViewerRtp[],
): WireSamples {
  const { packets } = readPcap(readFileSync(file));
  const s: WireSamples = {
    last: [],
    lastKeyframes: [],
    first: [],
    reaction: [],
    fanOut: [],
    fanOutKeyframes: [],
    expected: 0,
    missingIn: 0,
    missingOut: 0,
    viewersUnknown: 0,
    startsChecked: 0,
    startsConfirmed: 0,
    strayFrames: 0,
    offsetChanges: viewers.filter((v) => v.offsets.size > 1).length,
    tcpSegments: 0,
    rtpPackets: 0,
    unknownLength: 0,
  };
  if (packets.length === 0) return s;
  const sec0 = packets[0]!.sec;
  const ms = (p: PcapPacket) => (p.sec - sec0) * 1000 + p.nsec / 1e6;

  const ins = new Map<WireFrame, InTimes>();
  for (const pb of playbacks) inTimes(packets, cameraPort, pb, ms, ins, s);
  const outs = outTimes(packets, new Set(viewers.flatMap((v) => (v.ssrc === undefined ? [] : [v.ssrc]))), ms, s);

  const cameraTs = new Set(playbacks.flatMap((pb) => pb.frames.map((f) => f.ts)));
  for (const v of viewers) {
    if (v.ssrc === undefined || v.offset === undefined) continue;
    for (const ts of outs.get(v.ssrc)?.keys() ?? []) if (!cameraTs.has((ts - v.offset) >>> 0)) s.strayFrames++;
  }

  for (const pb of playbacks) {
    for (const f of pb.frames) {
      if (!inWindow(f)) continue;
      let firstOut = Infinity;
      let lastMarker = -Infinity;
      let matched = 0;
      const i = ins.get(f);
      for (const v of viewers) {
        s.expected++;
        if (v.ssrc === undefined || v.offset === undefined) {
          s.viewersUnknown++;
          continue;
        }
        const o = outs.get(v.ssrc)?.get((f.ts + v.offset) >>> 0);
        if (i?.first === undefined || i.last === undefined) s.missingIn++;
        else if (!o || o.marker === undefined) s.missingOut++;
        else {
          s.first.push(o.first - i.first);
          s.last.push(o.marker - i.last);
          if (f.keyframe) s.lastKeyframes.push(o.marker - i.last);
          firstOut = Math.min(firstOut, o.first);
          lastMarker = Math.max(lastMarker, o.marker);
          matched++;
        }
      }
      if (matched > 0 && matched === viewers.length) {
        s.reaction.push(firstOut - i!.last!);
        (f.keyframe ? s.fanOutKeyframes : s.fanOut).push(lastMarker - firstOut);
      }
    }
  }
  return s;
}

/** For each frame of the playback: when the segments with its first and its last byte were captured. */
function inTimes(packets: readonly PcapPacket[], cameraPort: number, pb: Playback, ms: (p: PcapPacket) => number, out: Map<WireFrame, InTimes>, s: WireSamples): void {
  const mine = (p: PcapPacket) => p.proto === 'tcp' && p.srcPort === cameraPort && p.dstPort === pb.remotePort;
  const synAck = packets.find((p) => mine(p) && (p.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK));
  if (!synAck) return; // every frame then counts as missing its in-time
  const isn = synAck.seq;
  // Offsets to find, in stream order: each frame's first byte, then its last.
  const wanted = pb.frames.flatMap((f) => [
    { at: f.firstByte, f, which: 'first' as const },
    { at: f.lastByte, f, which: 'last' as const },
  ]);
  let k = 0;
  for (const p of packets) {
    if (!mine(p) || p.payloadLength === 0) continue;
    s.tcpSegments++;
    if (p.payloadLength < 0) {
      s.unknownLength++;
      continue;
    }
    const start = (p.seq - isn - 1) >>> 0;
    const end = start + p.payloadLength;
    // Frames starting inside what was captured of this segment: their first bytes should be an
    // interleaved header ('$', channel, length) and an RTP header with the frame's timestamp.
    for (let j = k; j < wanted.length && wanted[j]!.at < start + p.payload.length; j++) {
      const w = wanted[j]!;
      const rel = w.at - start;
      if (w.which !== 'first' || rel < 0 || rel + 12 > p.payload.length) continue;
      s.startsChecked++;
      if (p.payload[rel] === 0x24 && p.payload.readUInt32BE(rel + 8) === w.f.ts) s.startsConfirmed++;
    }
    // A retransmission (start below what was seen) finds nothing new; an offset in a gap of the
    // capture (a segment the kernel dropped) is passed over and stays without a time.
    while (k < wanted.length && wanted[k]!.at < end) {
      const w = wanted[k++]!;
      if (w.at < start) continue;
      const t = out.get(w.f) ?? {};
      t[w.which] = ms(p);
      out.set(w.f, t);
    }
  }
}

/** SSRC → RTP timestamp → when the first packet and the marker packet of that frame were captured. */
function outTimes(packets: readonly PcapPacket[], ssrcs: ReadonlySet<number>, ms: (p: PcapPacket) => number, s: WireSamples): Map<number, Map<number, OutTimes>> {
  const out = new Map<number, Map<number, OutTimes>>();
  for (const p of packets) {
    const b = p.payload;
    if (p.proto !== 'udp' || b.length < 12 || (b[0]! & 0xc0) !== 0x80) continue;
    // RTCP (RFC 5761): packet types 192-223 where RTP has its marker bit and payload type.
    if (b[1]! >= 192 && b[1]! <= 223) continue;
    const ssrc = b.readUInt32BE(8);
    if (!ssrcs.has(ssrc)) continue;
    s.rtpPackets++;
    let frames = out.get(ssrc);
    if (!frames) out.set(ssrc, (frames = new Map()));
    const ts = b.readUInt32BE(4);
    const t = ms(p);
    let o = frames.get(ts);
    if (!o) frames.set(ts, (o = { first: t }));
    else if (t < o.first) o.first = t;
    if ((b[1]! & 0x80) !== 0 && (o.marker === undefined || t < o.marker)) o.marker = t;
  }
  return out;
}
