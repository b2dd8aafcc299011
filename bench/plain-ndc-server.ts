// "Plain node-datachannel": the least node-datachannel costs for the fan-out camrelay does, as
// the floor under the node-datachannel targets. No RTSP, no depacketizing, no stream, no
// slicing: the clip's frames, packetized once with camrelay's packetizer, sent at the clip's
// frame rate to every connected peer, viewer after viewer, each packet through the calls
// camrelay's backend makes (src/outputs/webrtc/ndc-peer.ts): a 12-byte RTP header written into
// one reused buffer, then Track.sendMessageBinary on a track with the same media handlers (SR
// reporter, NACK responder), all peers on one UDP port (the ICE UDP mux).
//
// usage: node --import tsx bench/plain-ndc-server.ts <clip.h264> <fps> <udp port>
// The HTTP side is bench/plain-shell.ts. GET /floor?seconds=S times the frames of the next S
// seconds at the sender: for each frame and viewer, from the frame's first send to the return of
// that viewer's marker packet's send (when the packet has left).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import nodeDataChannel, { type PeerConnection, type Track } from 'node-datachannel';
import { preferPassiveDtls, scanOffer } from '../src/outputs/webrtc/ndc-sdp.js';
import { parseArgs, servePlain, type PlainFrame } from './plain-shell.js';
import { threadCpuSeconds } from './proc.js';

const { PeerConnection: PC, Video, RtpPacketizationConfig, RtcpSrReporter, RtcpNackResponder } = nodeDataChannel;

interface Peer {
  pc: PeerConnection;
  track: Track;
  ssrc: number;
  payloadType: number;
  seq: number;
  open: boolean;
  started: boolean;
  closed: Promise<void>;
}

/** What GET /floor returns. */
export interface FloorSamples {
  /** ms from the frame's first send to each viewer's marker send returning, every (frame, viewer). */
  last: number[];
  lastKeyframes: number[];
  /** Per frame sent to every viewer: its packets × viewers, and ms for all of them. */
  sends: number[];
  fanOutMs: number[];
  keyframe: boolean[];
  packetsOut: number;
  /** CPU seconds of this process's main thread in the window (where every send runs). */
  mainThreadCpu: number;
  seconds: number;
}

const peers = new Map<string, Peer>();
const udpPort = Number(process.argv[4]);
if (!Number.isInteger(udpPort) || udpPort <= 0) throw new Error('usage: plain-ndc-server.ts <clip.h264> <fps> <udp port>');
const buf = Buffer.allocUnsafeSlow(1500);
let window: FloorSamples | undefined;

async function answer(offer: string, id: string): Promise<string> {
  const video = scanOffer(offer).find((m) => m.kind === 'video' && m.port !== 0 && m.mid);
  const codec = video?.codecs.find((c) => c.rtpmap.toUpperCase().startsWith('H264/'));
  if (!video || !codec) throw new Error('no H.264 video m-line in the offer');
  const pc = new PC('plain', {
    iceServers: [],
    bindAddress: '127.0.0.1',
    enableIceUdpMux: true,
    portRangeBegin: udpPort,
    portRangeEnd: udpPort,
    disableAutoNegotiation: true,
  });
  const closed = new Promise<void>((resolve) => pc.onStateChange((s) => s === 'closed' && resolve()));
  const gathered = new Promise<void>((resolve) => pc.onGatheringStateChange((s) => s === 'complete' && resolve()));
  pc.setRemoteDescription(preferPassiveDtls(offer), 'offer');
  const ssrc = randomBytes(4).readUInt32BE(0) || 1;
  const desc = new Video(video.mid!, 'SendOnly');
  if (codec.fmtp) desc.addVideoCodec(codec.payloadType, 'H264', codec.fmtp);
  else desc.addVideoCodec(codec.payloadType, 'H264');
  desc.addSSRC(ssrc, 'plain', 'plain', 'plain-video');
  const track = pc.addTrack(desc);
  const sr = new RtcpSrReporter(new RtpPacketizationConfig(ssrc, 'plain', codec.payloadType, 90000));
  sr.addToChain(new RtcpNackResponder());
  track.setMediaHandler(sr);
  const peer: Peer = { pc, track, ssrc, payloadType: codec.payloadType, seq: 0, open: false, started: false, closed };
  track.onOpen(() => (peer.open = true));
  track.onClosed(() => (peer.open = false));
  // As camrelay: RTCP from the viewer is read (and dropped), not left queued in the library.
  track.onMessage(() => undefined);
  peers.set(id, peer);
  pc.setLocalDescription('answer');
  await gathered;
  const sdp = pc.localDescription()?.sdp;
  if (!sdp) throw new Error('node-datachannel made no answer');
  return sdp;
}

function send({ payloads, keyframe, timestamp }: PlainFrame): void {
  const t0 = performance.now();
  let sent = 0;
  let viewers = 0;
  for (const peer of peers.values()) {
    if (!peer.open) continue;
    // As camrelay: a viewer starts at a keyframe.
    if (!peer.started && !keyframe) continue;
    peer.started = true;
    for (const p of payloads) {
      const size = 12 + p.head.length + p.body.length;
      buf[0] = 0x80;
      buf[1] = (p.marker ? 0x80 : 0) | peer.payloadType;
      buf.writeUInt16BE(peer.seq++ & 0xffff, 2);
      buf.writeUInt32BE(timestamp, 4);
      buf.writeUInt32BE(peer.ssrc, 8);
      buf.set(p.head, 12);
      buf.set(p.body, 12 + p.head.length);
      peer.track.sendMessageBinary(buf.subarray(0, size));
    }
    sent += payloads.length;
    viewers++;
    if (window) (keyframe ? window.lastKeyframes : window.last).push(performance.now() - t0);
  }
  if (!window || viewers === 0) return;
  window.sends.push(sent);
  window.fanOutMs.push(performance.now() - t0);
  window.keyframe.push(keyframe);
  window.packetsOut += sent;
}

function measure(seconds: number): Promise<FloorSamples> {
  const w: FloorSamples = { last: [], lastKeyframes: [], sends: [], fanOutMs: [], keyframe: [], packetsOut: 0, mainThreadCpu: 0, seconds };
  const cpu0 = threadCpuSeconds(process.pid, process.pid) ?? NaN;
  window = w;
  return new Promise((resolve) =>
    setTimeout(() => {
      window = undefined;
      w.mainThreadCpu = (threadCpuSeconds(process.pid, process.pid) ?? NaN) - cpu0;
      // Keyframe samples are also frame samples: `last` holds every (frame, viewer) pair.
      w.last.push(...w.lastKeyframes);
      resolve(w);
    }, seconds * 1000),
  );
}

function closePeer(p: Peer): Promise<void> {
  p.open = false;
  p.track.close();
  p.pc.close();
  return p.closed;
}

const { file, fps } = parseArgs('plain-ndc-server.ts');
servePlain(
  file,
  fps,
  {
    answer,
    send,
    close(id) {
      const p = peers.get(id);
      peers.delete(id);
      if (p) void closePeer(p);
      return p !== undefined;
    },
    async shutdown() {
      await Promise.all([...peers.values()].map(closePeer));
      nodeDataChannel.cleanup();
    },
  },
  (url, res) => {
    if (url.pathname !== '/floor') return false;
    const seconds = Number(url.searchParams.get('seconds'));
    if (!(seconds > 0 && seconds <= 120)) {
      res.writeHead(400);
      res.end('seconds: 0 < S <= 120');
      return true;
    }
    void measure(seconds).then((w) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(w));
    });
    return true;
  },
);
