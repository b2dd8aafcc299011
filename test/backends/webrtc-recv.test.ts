// Receiving a viewer's microphone (issue 18), on both WebRTC backends: a real werift client on
// loopback offers an audio m-line that sends (a=sendrecv, or a=sendonly alone) and sends RTP; the
// backend's RecvTrack gets it in order and intact, the answer says the right direction, and
// closing the peer closes the track. A viewer that sends nothing is answered as before.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCRtpTransceiver } from 'werift';
import { liveObjects } from '../../src/core/objects.js';
import type { RecvTrack, RtpIn, WebRtcBackend, WebRtcPeer } from '../../src/outputs/webrtc/backend.js';
import { RecvRtpTrack } from '../../src/outputs/webrtc/recv-track.js';
import { NdcBackend } from '../../src/outputs/webrtc/ndc-backend.js';
import { nativeLive } from '../../src/outputs/webrtc/ndc-native.js';
import { selectBackend, type SelectedBackend } from '../../src/outputs/webrtc/select-backend.js';
import type { WebRtcSettings } from '../../src/outputs/webrtc/settings.js';
import { NO_HEAD } from '../../src/rtp/payload.js';
import { weriftBackend } from '../../src/outputs/webrtc/werift-backend.js';
import { waitEvent, waitFor, withDeadline } from '../helpers/wait.js';
import { loopbackPeer, Viewer } from '../helpers/werift-viewer.js';

const ndcSkip: string | false = await import('node-datachannel').then(() => false as const, (e: unknown) => `node-datachannel does not load here: ${String(e)}`);

let selected: SelectedBackend | undefined;

async function ndc(): Promise<WebRtcBackend> {
  selected ??= await selectBackend('node-datachannel', { listen: '127.0.0.1:0', loopbackOnly: true });
  assert.ok(selected.backend instanceof NdcBackend);
  return selected.backend;
}

const settings: WebRtcSettings = { candidates: [], iceServers: [], timeouts: { connect: 5000, disconnect: 5000 }, loopbackOnly: true };

function counts(): Record<string, number> {
  return Object.fromEntries(Object.entries(liveObjects()).filter(([, n]) => n !== 0));
}


function section(sdp: string, kind: string): string {
  const s = sdp.split(/\r\n(?=m=)/).find((p) => p.startsWith(`m=${kind}`));
  assert.ok(s, `no m=${kind} in\n${sdp}`);
  return s;
}

function direction(section: string): string | undefined {
  return /^a=(sendrecv|sendonly|recvonly|inactive)$/m.exec(section)?.[1];
}

const OPUS = () => new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 });
const PCMA = () => new RTCRtpCodecParameters({ mimeType: 'audio/PCMA', clockRate: 8000, channels: 1 });
const H264 = () =>
  new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, rtcpFeedback: [{ type: 'nack' }], parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' });

/**
 * A viewer with a microphone: a werift peer whose audio m-line sends (and, with sendrecv,
 * receives too), with a recvonly video m-line before it as a browser offers (optional).
 */
class MicClient {
  readonly pc: RTCPeerConnection;
  readonly audio: RTCRtpTransceiver;
  /** What the server sent on the audio m-line. */
  received: RtpPacket[] = [];

  constructor(opts: { direction: 'sendrecv' | 'sendonly'; codecs: RTCRtpCodecParameters[]; video?: boolean }) {
    this.pc = new RTCPeerConnection({
      ...loopbackPeer(),
      codecs: { audio: opts.codecs, video: [H264()] },
    });
    if (opts.video) this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.audio = this.pc.addTransceiver('audio', { direction: opts.direction });
    this.pc.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        if (track.kind === 'audio') this.received.push(rtp);
      });
    });
  }

  get audioMid(): string {
    return this.audio.mid!;
  }

  async offer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    return this.pc.localDescription!.sdp;
  }

  answer(sdp: string): Promise<void> {
    return this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  /** One packet through the negotiated sender (its SSRC and payload type). */
  send(seq: number, timestamp: number, payload: Buffer, marker = false): Promise<void> {
    return this.audio.sender.sendRtp(new RtpPacket(new RtpHeader({ sequenceNumber: seq, timestamp, marker }), payload));
  }

  /** One packet with a payload type of our choosing, on the sender's SSRC (past the sender's rewrite). */
  async sendRaw(payloadType: number, seq: number, timestamp: number, payload: Buffer): Promise<void> {
    await this.audio.dtlsTransport.sendRtp(payload, new RtpHeader({ payloadType, sequenceNumber: seq, timestamp, ssrc: this.audio.sender.ssrc }));
  }

  async close(): Promise<void> {
    await this.pc.close();
  }
}

/** A payload that says which packet it is, of a size that varies (20 ms of Opus: 60-180 bytes). */
function payloadOf(i: number): Buffer {
  const b = Buffer.alloc(60 + (i % 7) * 20);
  b.writeUInt32BE(i, 0);
  for (let j = 4; j < b.length; j++) b[j] = (i * 31 + j) & 0xff;
  return b;
}

/** Sends `n` packets of 20 ms (timestamps `step` apart), a few per millisecond tick: paced, not bursted. */
async function sendPackets(client: MicClient, n: number, firstSeq: number, step: number, firstTs = 0xffff0000): Promise<void> {
  for (let i = 0; i < n; i++) {
    await client.send((firstSeq + i) & 0xffff, (firstTs + i * step) >>> 0, payloadOf(i), i === 0);
    if (i % 4 === 3) await new Promise((r) => setTimeout(r, 2));
  }
}

/** The answer (every candidate in it), applied by the client, then connected. */
async function connect(peer: WebRtcPeer, client: MicClient): Promise<string> {
  await peer.createAnswer();
  await withDeadline(peer.gatheringComplete(), 3000, 'gathering');
  const answer = peer.localDescription();
  await client.answer(answer);
  await waitFor('connected', () => peer.state === 'connected', 5000);
  return answer;
}

function assertInOrder(got: RtpIn[], n: number, firstSeq: number, step: number, pt: number, ssrc: number, firstTs = 0xffff0000): void {
  assert.equal(got.length, n, 'every packet, once');
  for (const [i, p] of got.entries()) {
    assert.equal(p.sequenceNumber, (firstSeq + i) & 0xffff, `packet ${i}: sequence`);
    assert.equal(p.timestamp, (firstTs + i * step) >>> 0, `packet ${i}: timestamp`);
    assert.equal(p.payloadType, pt);
    assert.equal(p.ssrc, ssrc);
    assert.equal(p.marker, i === 0);
    assert.ok(p.payload.equals(payloadOf(i)), `packet ${i}: payload intact`);
  }
}

/** Closes the peer and checks the track went with it: 'close' once, nothing after, counts back. */
async function closeAndCheck(peer: WebRtcPeer, track: RecvTrack | undefined, client: MicClient, base: Record<string, number>, more?: () => Promise<void>): Promise<void> {
  let closes = 0;
  let after = 0;
  track?.on('close', () => closes++);
  track?.on('rtp', () => after++);
  const closed = track ? waitEvent(track, 'close', 1000) : Promise.resolve();
  peer.close();
  await closed;
  assert.equal(track?.closed ?? true, true);
  assert.equal(closes, track ? 1 : 0, "'close' once");
  // The client still sends for a while: none of it reaches the closed track.
  await more?.();
  await withDeadline(peer.done, 6000, 'peer done');
  await client.close();
  assert.equal(after, 0, "no 'rtp' after close");
  peer.close(); // idempotent
  assert.equal(closes, track ? 1 : 0);
  assert.deepEqual(counts(), base, 'object counts back');
}

const BACKENDS: { name: string; backend: () => Promise<WebRtcBackend>; skip: string | false }[] = [
  { name: 'werift', backend: async () => weriftBackend, skip: false },
  { name: 'node-datachannel', backend: ndc, skip: ndcSkip },
];

for (const b of BACKENDS) {
  await describe(`receiving on ${b.name}`, { skip: b.skip }, async () => {
    // In the suite: a file-level hook would run before the suites' tests. Releases the library
    // (node-datachannel's process does not exit before).
    after(async () => {
      await selected?.close();
      selected = undefined;
    });

    test('a=sendrecv Opus (behind a recvonly video m-line): answered sendrecv, 200 packets in order and intact, our audio goes the other way', { timeout: 30000 }, async () => {
      const backend = await b.backend();
      const base = counts();
      const client = new MicClient({ direction: 'sendrecv', codecs: [OPUS()], video: true });
      const peer = backend.createPeer(settings);
      let track: RecvTrack | undefined;
      try {
        const offer = await client.offer();
        assert.equal(direction(section(offer, 'audio')), 'sendrecv');
        assert.match(section(offer, 'audio'), /a=ssrc:\d+ /, 'the offer names its SSRC (as browsers do)');
        await peer.setRemoteOffer(offer);
        const mid = client.audioMid;
        const pt = client.audio.codecs[0]!.payloadType;
        const opus = { payloadType: pt, name: 'opus', clockRate: 48000, channels: 2 };
        // Receive first, then send: either order makes one sendrecv m-line.
        track = peer.addRecvTrack({ mid, kind: 'audio', codec: opus });
        const send = peer.addSendTrack({ mid, kind: 'audio', codec: opus });
        assert.equal(counts()['WebRtcRecvTrack'], (base['WebRtcRecvTrack'] ?? 0) + 1);
        const got: RtpIn[] = [];
        track.on('rtp', (p) => got.push(p));
        const answer = await connect(peer, client);
        const a = section(answer, 'audio');
        assert.equal(direction(a), 'sendrecv');
        assert.match(a, new RegExp(`^m=audio \\d+ UDP/TLS/RTP/SAVPF ${pt}\\r\\n`), 'one codec, the one given');
        assert.match(a, new RegExp(`a=rtpmap:${pt} opus/48000/2`));
        assert.match(a, new RegExp(`a=ssrc:${send.ssrc} `), 'our SSRC, for what we send');
        assert.equal(direction(section(answer, 'video')), 'inactive');
        await sendPackets(client, 200, 65500, 960);
        await waitFor('200 packets', () => got.length >= 200, 5000);
        assertInOrder(got, 200, 65500, 960, pt, client.audio.sender.ssrc);
        assert.deepEqual(track.stats, { packets: 200, bytes: got.reduce((n, p) => n + p.payload.length, 0), wrongPayloadType: 0, malformed: 0 });
        // The other way on the same m-line: the camera's audio to the viewer.
        for (let i = 0; i < 5; i++) send.write({ head: NO_HEAD, body: Buffer.from([0xfc, i]), marker: false, sequenceNumber: 100 + i, timestamp: i * 960 });
        await waitFor('our audio at the client', () => client.received.length >= 5, 3000);
        assert.deepEqual(client.received.map((p) => p.payload[1]), [0, 1, 2, 3, 4]);
      } finally {
        await closeAndCheck(peer, track, client, base, () => sendPackets(client, 20, 0, 960));
      }
      if (b.name === 'node-datachannel') assert.equal(nativeLive.size, 0, 'every native wrapper reported its close');
    });

    test('a=sendrecv PCMA offered with Opus: PCMA answered alone; Opus packets on the m-line are dropped and counted', { timeout: 30000 }, async () => {
      const backend = await b.backend();
      const base = counts();
      const client = new MicClient({ direction: 'sendrecv', codecs: [OPUS(), PCMA()] });
      const peer = backend.createPeer(settings);
      let track: RecvTrack | undefined;
      try {
        const offer = await client.offer();
        await peer.setRemoteOffer(offer);
        const mid = client.audioMid;
        const opusPt = client.audio.codecs.find((c) => c.name.toLowerCase() === 'opus')!.payloadType;
        const pcmaPt = client.audio.codecs.find((c) => c.name.toUpperCase() === 'PCMA')!.payloadType;
        const pcma = { payloadType: pcmaPt, name: 'PCMA', clockRate: 8000 };
        // Send, then receive.
        peer.addSendTrack({ mid, kind: 'audio', codec: pcma });
        assert.throws(() => peer.addRecvTrack({ mid, kind: 'audio', codec: { payloadType: opusPt, name: 'opus', clockRate: 48000, channels: 2 } }), /one codec per m-line/);
        track = peer.addRecvTrack({ mid, kind: 'audio', codec: pcma });
        assert.throws(() => peer.addRecvTrack({ mid, kind: 'audio', codec: pcma }), /receive track already/);
        const got: RtpIn[] = [];
        track.on('rtp', (p) => got.push(p));
        const answer = await connect(peer, client);
        const a = section(answer, 'audio');
        assert.equal(direction(a), 'sendrecv');
        assert.match(a, new RegExp(`^m=audio \\d+ UDP/TLS/RTP/SAVPF ${pcmaPt}\\r\\n`));
        assert.match(a, new RegExp(`a=rtpmap:${pcmaPt} PCMA/8000`));
        assert.doesNotMatch(a, /opus/i);
        assert.equal(client.audio.sender.codec?.payloadType, pcmaPt, 'the client sends PCMA');
        // 10 Opus packets on the same SSRC (another payload type: dropped), then 200 PCMA; one
        // sequence for both, as SRTP wants it (a jump back would read as a rollover and fail).
        for (let i = 0; i < 10; i++) await client.sendRaw(opusPt, 1 + i, i * 960, Buffer.from([0xfc, 0xff, 0xfe]));
        await sendPackets(client, 200, 11, 160, 0);
        await waitFor('200 packets', () => got.length >= 200, 5000);
        assertInOrder(got, 200, 11, 160, pcmaPt, client.audio.sender.ssrc, 0);
        await waitFor('the Opus packets counted', () => track!.stats.wrongPayloadType === 10, 2000);
        assert.equal(track.stats.packets, 200);
        assert.equal(track.stats.malformed, 0);
      } finally {
        await closeAndCheck(peer, track, client, base);
      }
    });

    test('an offer with one a=sendonly audio m-line: answered recvonly, nothing sent, 200 packets in order and intact', { timeout: 30000 }, async () => {
      const backend = await b.backend();
      const base = counts();
      const client = new MicClient({ direction: 'sendonly', codecs: [OPUS()] });
      const peer = backend.createPeer(settings);
      let track: RecvTrack | undefined;
      try {
        const offer = await client.offer();
        assert.equal(direction(section(offer, 'audio')), 'sendonly');
        await peer.setRemoteOffer(offer);
        const mid = client.audioMid;
        const pt = client.audio.codecs[0]!.payloadType;
        assert.throws(() => peer.addRecvTrack({ mid: 'nope', kind: 'audio', codec: { payloadType: pt, name: 'opus', clockRate: 48000 } }), /no m-line with mid nope/);
        assert.throws(() => peer.addRecvTrack({ mid, kind: 'audio', codec: { payloadType: 3, name: 'GSM', clockRate: 8000 } }), /no payload type 3/);
        track = peer.addRecvTrack({ mid, kind: 'audio', codec: { payloadType: pt, name: 'opus', clockRate: 48000, channels: 2 } });
        const got: RtpIn[] = [];
        track.on('rtp', (p) => got.push(p));
        const answer = await connect(peer, client);
        const a = section(answer, 'audio');
        assert.equal(direction(a), 'recvonly');
        assert.match(a, new RegExp(`^m=audio \\d+ UDP/TLS/RTP/SAVPF ${pt}\\r\\n`));
        // (werift writes an a=ssrc line in every answered m-line, libdatachannel only where it sends.)
        if (b.name === 'node-datachannel') assert.doesNotMatch(a, /a=ssrc:/, 'we send nothing there');
        assert.throws(() => peer.addRecvTrack({ mid, kind: 'audio', codec: { payloadType: pt, name: 'opus', clockRate: 48000 } }), /after createAnswer/);
        await sendPackets(client, 200, 7, 960);
        await waitFor('200 packets', () => got.length >= 200, 5000);
        assertInOrder(got, 200, 7, 960, pt, client.audio.sender.ssrc);
      } finally {
        await closeAndCheck(peer, track, client, base, () => sendPackets(client, 20, 300, 960));
      }
    });

    test('a=sendrecv audio with nothing for us to send there (a stream without audio): answered recvonly, packets received', { timeout: 30000 }, async () => {
      const backend = await b.backend();
      const base = counts();
      const client = new MicClient({ direction: 'sendrecv', codecs: [PCMA()], video: true });
      const peer = backend.createPeer(settings);
      let track: RecvTrack | undefined;
      try {
        await peer.setRemoteOffer(await client.offer());
        const pt = client.audio.codecs[0]!.payloadType;
        track = peer.addRecvTrack({ mid: client.audioMid, kind: 'audio', codec: { payloadType: pt, name: 'PCMA', clockRate: 8000 } });
        const got: RtpIn[] = [];
        track.on('rtp', (p) => got.push(p));
        const answer = await connect(peer, client);
        assert.equal(direction(section(answer, 'audio')), 'recvonly');
        assert.equal(direction(section(answer, 'video')), 'inactive');
        await sendPackets(client, 50, 500, 160);
        await waitFor('50 packets', () => got.length >= 50, 5000);
        assertInOrder(got, 50, 500, 160, pt, client.audio.sender.ssrc);
      } finally {
        await closeAndCheck(peer, track, client, base);
      }
    });

    test('a viewer that sends nothing (recvonly) cannot get a receive track and is answered as before; a sendrecv one without a receive track is answered sendonly', { timeout: 30000 }, async () => {
      const backend = await b.backend();
      const base = counts();
      const viewer = new Viewer();
      const peer = backend.createPeer(settings);
      try {
        const offer = await viewer.offer();
        assert.equal(direction(section(offer, 'audio')), 'recvonly');
        await peer.setRemoteOffer(offer);
        assert.throws(() => peer.addRecvTrack({ mid: '1', kind: 'audio', codec: { payloadType: 111, name: 'opus', clockRate: 48000, channels: 2 } }), /m-line 1 sends nothing \(the offer says recvonly\)/);
        assert.equal(counts()['WebRtcRecvTrack'] ?? 0, base['WebRtcRecvTrack'] ?? 0, 'no track made');
        const pt = /^m=audio \d+ \S+ (\d+)/m.exec(offer)![1]!;
        const video = peer.addSendTrack({ mid: '0', kind: 'video', codec: { payloadType: Number(/^m=video \d+ \S+ (\d+)/m.exec(offer)![1]), name: 'H264', clockRate: 90000 } });
        const audio = peer.addSendTrack({ mid: '1', kind: 'audio', codec: { payloadType: Number(pt), name: 'opus', clockRate: 48000, channels: 2 } });
        await peer.createAnswer();
        await withDeadline(peer.gatheringComplete(), 3000, 'gathering');
        const answer = peer.localDescription();
        assert.equal(direction(section(answer, 'video')), 'sendonly');
        assert.equal(direction(section(answer, 'audio')), 'sendonly');
        assert.match(section(answer, 'audio'), new RegExp(`^m=audio \\d+ UDP/TLS/RTP/SAVPF ${pt}\\r\\n`));
        await viewer.answer(answer);
        await waitFor('connected', () => peer.state === 'connected', 5000);
        audio.write({ head: NO_HEAD, body: Buffer.from([0xfc, 1]), marker: false, sequenceNumber: 1, timestamp: 960 });
        video.write({ head: NO_HEAD, body: Buffer.from([0x65, 1]), marker: true, sequenceNumber: 1, timestamp: 0 });
        await waitFor('audio and video at the viewer', () => viewer.audio.length === 1 && viewer.video.length === 1, 3000);
      } finally {
        peer.close();
        await withDeadline(peer.done, 6000, 'peer done');
        await viewer.close();
      }
      assert.deepEqual(counts(), base);

      const client = new MicClient({ direction: 'sendrecv', codecs: [OPUS()] });
      const peer2 = backend.createPeer(settings);
      try {
        const offer = await client.offer();
        await peer2.setRemoteOffer(offer);
        peer2.addSendTrack({ mid: client.audioMid, kind: 'audio', codec: { payloadType: client.audio.codecs[0]!.payloadType, name: 'opus', clockRate: 48000, channels: 2 } });
        const answer = await connect(peer2, client);
        assert.equal(direction(section(answer, 'audio')), 'sendonly', 'no receive track: sendonly, as before');
        assert.equal(client.audio.currentDirection, 'recvonly', 'so the viewer does not send');
      } finally {
        await closeAndCheck(peer2, undefined, client, base);
      }
    });
  });
}

test('RecvRtpTrack: malformed and wrong payload type packets are dropped and counted, never thrown; a listener that throws stops nothing', () => {
  const base = counts();
  const track = new RecvRtpTrack('1', { payloadType: 8, name: 'PCMA', clockRate: 8000 });
  const got: RtpIn[] = [];
  track.on('rtp', () => {
    throw new Error('a bad listener');
  });
  track.on('rtp', (p) => got.push(p));
  const rtp = (pt: number, seq: number, extra: number[] = [], b0 = 0x80) => Buffer.from([b0, pt, seq >> 8, seq & 0xff, 0, 0, 0, 160, 1, 2, 3, 4, ...extra]);
  const bad = [
    Buffer.alloc(0),
    Buffer.from([0x80, 8, 0]),
    rtp(8, 1, [1, 2], 0x40), // version 1
    rtp(8, 2, [0, 0], 0xa0), // padding 0
    rtp(8, 3, [9], 0xa0), // padding longer than the packet
    rtp(8, 4, [0, 0], 0x90), // extension header cut short
    rtp(8, 5, [], 0x8f), // 15 CSRCs that are not there
  ];
  for (const b of bad) assert.doesNotThrow(() => track.receiveRaw(b));
  assert.doesNotThrow(() => track.receiveRaw(rtp(0, 6, [0xd5])));
  track.receiveRaw(rtp(8 | 0x80, 7, [0xd5, 0xd5])); // marker set, PCMA
  track.receiveRaw(rtp(8, 8, [0xd5, 0xd5, 0xa1, 0, 2], 0xa0)); // two bytes of padding
  assert.deepEqual(track.stats, { packets: 2, bytes: 5, wrongPayloadType: 1, malformed: bad.length });
  assert.deepEqual(got.map((p) => [p.sequenceNumber, p.marker, p.ssrc, [...p.payload]]), [
    [7, true, 0x01020304, [0xd5, 0xd5]],
    [8, false, 0x01020304, [0xd5, 0xd5, 0xa1]],
  ]);
  assert.equal(counts()['WebRtcRecvTrack'], (base['WebRtcRecvTrack'] ?? 0) + 1);
  let closes = 0;
  track.on('close', () => closes++);
  track.close();
  track.close();
  assert.equal(closes, 1);
  track.receiveRaw(rtp(8, 9, [0xd5]));
  assert.equal(got.length, 2, 'nothing after close');
  assert.deepEqual(counts(), base);
});
