// "Plain werift": the least a werift sender can do for the fan-out camrelay does, as the yardstick
// of the werift target (camrelay's cost per added viewer at most 10% above this). No
// RTSP, no depacketizing, no stream: the clip's frames, packetized once at start with camrelay's
// own packetizer, sent at the clip's frame rate to every connected peer through
// RTCRtpSender.sendRtp, one fresh RtpPacket per peer and packet (werift rewrites what it is
// given), exactly as camrelay's werift backend writes them.
//
// usage: node --import tsx bench/plain-werift-server.ts <clip.h264> <fps>
// Answers POST /api/webrtc?src=… (application/sdp, 201 + Location) and DELETE on the Location, as
// camrelay does; prints {"event":"listening","port":N} once ready (bench/plain-shell.ts).
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCRtpSender } from 'werift';
import { parseArgs, servePlain, type PlainFrame } from './plain-shell.js';
import { payloadBytes } from '../src/rtp/payload.js';

interface Peer {
  pc: RTCPeerConnection;
  sender: RTCRtpSender;
  payloadType: number;
  seq: number;
  started: boolean;
}
const peers = new Map<string, Peer>();

async function answer(offer: string, id: string): Promise<string> {
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
  peers.set(id, { pc, sender: t.sender, payloadType: codec.payloadType, seq: 0, started: false });
  return pc.localDescription!.sdp;
}

function send({ payloads, keyframe, timestamp }: PlainFrame): void {
  for (const peer of peers.values()) {
    if (peer.sender.dtlsTransport?.state !== 'connected') continue;
    // As camrelay: a viewer starts at a keyframe.
    if (!peer.started && !keyframe) continue;
    peer.started = true;
    for (const p of payloads) {
      const header = new RtpHeader({ payloadType: peer.payloadType, sequenceNumber: peer.seq++ & 0xffff, timestamp, marker: p.marker, ssrc: peer.sender.ssrc });
      void peer.sender.sendRtp(new RtpPacket(header, payloadBytes(p))).catch(() => undefined);
    }
  }
}

const { file, fps } = parseArgs('plain-werift-server.ts');
servePlain(file, fps, {
  answer,
  send,
  close(id) {
    const p = peers.get(id);
    peers.delete(id);
    void p?.pc.close();
    return p !== undefined;
  },
  async shutdown() {
    await Promise.all([...peers.values()].map((p) => p.pc.close().catch(() => undefined)));
  },
});
