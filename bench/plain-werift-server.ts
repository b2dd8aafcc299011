// "Plain werift": the least a werift sender can do for the fan-out camrelay does, as the yardstick
// of the werift target (camrelay's cost per added viewer at most 10% above this). No
// RTSP, no depacketizing, no stream: the clip's frames, packetized once at start with camrelay's
// own packetizer, sent at the clip's frame rate to every connected peer through
// RTCRtpSender.sendRtp, one fresh RtpPacket per peer and packet (werift rewrites what it is
// given), exactly as camrelay's werift backend writes them.
//
// usage: node --import tsx bench/plain-werift-server.ts <clip.h264> <fps>
// Answers POST /api/webrtc?src=… (application/sdp, 201 + Location) and DELETE on the Location, as
// camrelay does; prints {"event":"listening","port":N} once ready.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCRtpSender } from 'werift';
import { packetizeH264, type RtpPayload } from '../src/rtp/h264-packetizer.js';
import { readAccessUnits } from './clip.js';

const [file, fpsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: plain-werift-server.ts <clip.h264> <fps>');
const fps = Number(fpsArg ?? 25);
const frames: RtpPayload[][] = readAccessUnits(file).map((au) => packetizeH264(au.nals));

interface Peer {
  pc: RTCPeerConnection;
  sender: RTCRtpSender;
  payloadType: number;
  seq: number;
  started: boolean;
}
const peers = new Map<string, Peer>();

async function answer(offer: string): Promise<{ id: string; sdp: string }> {
  const pc = new RTCPeerConnection({
    bundlePolicy: 'max-bundle',
    iceServers: [],
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    codecs: { audio: [], video: [new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000 })] },
    headerExtensions: { audio: [], video: [] },
  });
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  for (const t of pc.iceTransports) t.connection.stunServer = undefined;
  const t = pc.getTransceivers().find((x) => x.kind === 'video');
  if (!t) throw new Error('no video m-line');
  const codec = t.codecs[0];
  if (!codec) throw new Error('no H.264 in the offer');
  t.codecs = [codec];
  t.sender.codec = codec;
  t.setDirection('sendonly');
  await pc.setLocalDescription(await pc.createAnswer());
  const id = randomBytes(9).toString('base64url');
  peers.set(id, { pc, sender: t.sender, payloadType: codec.payloadType, seq: 0, started: false });
  return { id, sdp: pc.localDescription!.sdp };
}

function tick(n: number): void {
  const payloads = frames[n % frames.length]!;
  const keyframe = payloads.some((p) => (p.payload[0]! & 0x1f) === 5 || ((p.payload[0]! & 0x1f) === 28 && (p.payload[1]! & 0x1f) === 5));
  const timestamp = (n * Math.round(90000 / fps)) >>> 0;
  for (const peer of peers.values()) {
    if (peer.sender.dtlsTransport?.state !== 'connected') continue;
    // As camrelay: a viewer starts at a keyframe.
    if (!peer.started && !keyframe) continue;
    peer.started = true;
    for (const p of payloads) {
      const header = new RtpHeader({ payloadType: peer.payloadType, sequenceNumber: peer.seq++ & 0xffff, timestamp, marker: p.marker, ssrc: peer.sender.ssrc });
      void peer.sender.sendRtp(new RtpPacket(header, p.payload)).catch(() => undefined);
    }
  }
}

const t0 = performance.now();
let n = 0;
const loop = () => {
  tick(n++);
  setTimeout(loop, Math.max(0, t0 + (n * 1000) / fps - performance.now()));
};
loop();

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'POST' && url.pathname === '/api/webrtc') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      answer(Buffer.concat(chunks).toString()).then(
        ({ id, sdp }) => {
          res.writeHead(201, { 'Content-Type': 'application/sdp', Location: `/api/webrtc?id=${id}` });
          res.end(sdp);
        },
        (e: unknown) => {
          res.writeHead(400);
          res.end(String(e));
        },
      );
    });
    return;
  }
  if (req.method === 'DELETE' && url.pathname === '/api/webrtc') {
    const id = url.searchParams.get('id') ?? '';
    const p = peers.get(id);
    peers.delete(id);
    void p?.pc.close();
    res.writeHead(p ? 200 : 404);
    res.end();
    return;
  }
  res.writeHead(404);
  res.end();
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  console.log(JSON.stringify({ event: 'listening', port: typeof a === 'object' && a ? a.port : 0 }));
});
// Our parent holds stdin: when it goes, so do we.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
