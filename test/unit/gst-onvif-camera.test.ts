// The ONVIF test camera itself (gst-camera.ts with `backchannel`): GStreamer answers a DESCRIBE
// without `Require: www.onvif.org/ver20/backchannel` with its normal SDP, and one with it with an
// extra a=sendonly PCMA media; PCMA RTP of a 1 kHz tone sent on that media's interleaved channel
// comes out of backchannelAudio() as that tone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { RtspMessageReader, RtspHeaders, serializeRequest, serializeInterleaved, type RtspResponse } from '../../src/rtsp/message.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';

const skip = cameraCanRun('h264', 'pcma') ? false : 'gst-rtsp-server (ONVIF) with x264enc/alawdec not available';
const BACKCHANNEL = 'www.onvif.org/ver20/backchannel';

/** One RTSP connection: requests answered in order, interleaved frames from the camera dropped. */
class RawRtsp {
  readonly socket: Socket;
  #reader = new RtspMessageReader({ maxHeaderBytes: 64 * 1024, maxBodyBytes: 64 * 1024 });
  #waiting: Array<(r: RtspResponse) => void> = [];
  #cseq = 0;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.on('data', (chunk: Buffer) => {
      for (const item of this.#reader.push(chunk)) if (item.type === 'response') this.#waiting.shift()?.(item);
    });
  }

  request(method: string, url: string, headers: Record<string, string> = {}): Promise<RtspResponse> {
    const h = new RtspHeaders({ CSeq: ++this.#cseq, ...headers });
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer to ${method} within 10 s`)), 10000);
      this.#waiting.push((r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.socket.write(serializeRequest({ method, url, headers: h }));
    });
  }
}

/** G.711 A-law of one 16-bit sample (ITU-T G.711 segments, even bits inverted). */
function alaw(sample: number): number {
  const sign = sample >= 0 ? 0x80 : 0;
  let s = (sample >= 0 ? sample : -sample - 1) >> 3;
  let code: number;
  if (s < 32) code = s >> 1;
  else {
    let seg = 1;
    for (let t = s >> 5; t > 1 && seg < 7; t >>= 1) seg++;
    code = (seg << 4) | ((s >> seg) & 0x0f);
  }
  return (code | sign) ^ 0x55;
}

/** |X(f)| / n of s16le samples at 8 kHz (Goertzel): half the amplitude of a sine at f. */
function goertzel(pcm: Buffer, f: number): number {
  const n = pcm.length >> 1;
  const k = 2 * Math.cos((2 * Math.PI * f) / 8000);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) [s1, s2] = [pcm.readInt16LE(2 * i) + k * s1 - s2, s1];
  return Math.sqrt(Math.max(0, s1 * s1 + s2 * s2 - k * s1 * s2)) / Math.max(1, n);
}

test('ONVIF camera: the SDP has a sendonly PCMA media only for a DESCRIBE that requires the backchannel; a 1 kHz tone sent there comes out decoded', { skip, timeout: 60000 }, async () => {
  const camera = await GstCamera.start({ pipeline: 'h264', backchannel: 'pcma' });
  const plain = new RawRtsp(camera.port);
  const onvif = new RawRtsp(camera.port);
  try {
    const normal = await plain.request('DESCRIBE', camera.url(), { Accept: 'application/sdp' });
    assert.equal(normal.status, 200);
    const normalSdp = normal.body.toString();
    assert.deepEqual(normalSdp.match(/^m=.*$/gm), ['m=video 0 RTP/AVP 96']);
    assert.doesNotMatch(normalSdp, /a=sendonly/);
    plain.socket.destroy();

    const described = await onvif.request('DESCRIBE', camera.url(), { Accept: 'application/sdp', Require: BACKCHANNEL });
    assert.equal(described.status, 200);
    const sdp = described.body.toString();
    const medias = sdp.split(/\r?\nm=/).slice(1);
    assert.deepEqual(medias.map((m) => m.split(/\r?\n/)[0]), ['video 0 RTP/AVP 96', 'audio 0 RTP/AVP 8']);
    assert.match(medias[0]!, /a=recvonly/);
    assert.match(medias[1]!, /a=rtpmap:8 PCMA\/8000/);
    assert.match(medias[1]!, /a=sendonly/);
    // The camera's report may come after its answer: the next DESCRIBE event, not the last one seen.
    const plainSeen = await camera.waitEvent((e) => e.method === 'DESCRIBE');
    assert.equal(plainSeen.require, undefined);
    const describeSeen = await camera.waitEvent((e) => e.method === 'DESCRIBE' && e !== plainSeen);
    assert.equal(describeSeen.require, BACKCHANNEL);

    const base = described.headers.get('Content-Base')!.replace(/\/$/, '');
    const control = (m: string) => `${base}/${/a=control:(\S+)/.exec(m)![1]}`;
    const video = await onvif.request('SETUP', control(medias[0]!), { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1', Require: BACKCHANNEL });
    assert.equal(video.status, 200);
    const session = video.headers.get('Session')!.split(';')[0]!;
    // GStreamer takes the backchannel's RTP only when its SETUP comes before PLAY.
    const back = await onvif.request('SETUP', control(medias[1]!), { Transport: 'RTP/AVP/TCP;unicast;interleaved=2-3', Session: session, Require: BACKCHANNEL });
    assert.equal(back.status, 200);
    assert.equal((await onvif.request('PLAY', camera.url(), { Session: session, Require: BACKCHANNEL })).status, 200);

    // 1 s of a 1 kHz tone, 160 samples (20 ms) a packet, sent at once: the camera's
    // jitterbuffer and appsink (sync=false) do not need pacing.
    const packets = 50;
    for (let i = 0; i < packets; i++) {
      const rtp = Buffer.alloc(12 + 160);
      rtp[0] = 0x80;
      rtp[1] = (i === 0 ? 0x80 : 0) | 8;
      rtp.writeUInt16BE((1000 + i) & 0xffff, 2);
      rtp.writeUInt32BE(12345 + i * 160, 4);
      rtp.writeUInt32BE(0x11223344, 8);
      for (let j = 0; j < 160; j++) rtp[12 + j] = alaw(Math.round(12000 * Math.sin((2 * Math.PI * 1000 * (i * 160 + j)) / 8000)));
      onvif.socket.write(serializeInterleaved(2, rtp));
    }
    const first = camera.events.find((e) => e.event === 'backchannel') ?? (await camera.waitBackchannel(1, 10000));
    assert.equal(first.pt, 8);
    assert.match(first.caps ?? '', /encoding-name=\(string\)PCMA/);
    await camera.waitBackchannel(packets, 10000, packets * 320);
    assert.equal(camera.backchannelPackets(), packets);
    const audio = camera.backchannelAudio();
    assert.equal(audio.length, packets * 320);
    const tone = goertzel(audio, 1000);
    assert.ok(tone > 5000, `1 kHz at ${tone.toFixed(0)} (a 12000 sine gives 6000)`);
    assert.ok(goertzel(audio, 440) < tone / 100, 'no 440 Hz');

    // The backchannel's media goes with its client.
    onvif.socket.destroy();
    const end = await camera.waitEvent((e) => e.event === 'backchannel-end', 10000);
    assert.equal(end.packets, packets);
  } finally {
    plain.socket.destroy();
    onvif.socket.destroy();
    await camera.stop();
  }
});
