import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OfferError, chooseAudio, chooseVideo, h264Profile, parseOffer } from '../../src/outputs/webrtc/offer.js';
import { extraCandidates, withExtraCandidates } from '../../src/outputs/webrtc/backend.js';
import type { Track } from '../../src/core/media.js';
import { CHROME_OFFER } from '../helpers/chrome-offer.js';

const h264 = (profileIdc: number, iop: number): Track => ({
  kind: 'video',
  codec: { name: 'H264', clockRate: 90000 },
  params: { sps: Buffer.from([0x67, profileIdc, iop, 0x1f]), pps: Buffer.from([0x68, 0xce]) },
});
const audio = (name: 'OPUS' | 'PCMA' | 'PCMU', clockRate = name === 'OPUS' ? 48000 : 8000): Track => ({ kind: 'audio', codec: { name, clockRate } });

test('a Chrome offer: H.264 mode 1 only, audio codecs in the offer order', { timeout: 5000 }, () => {
  const o = parseOffer(CHROME_OFFER);
  assert.equal(o.media.length, 2);
  assert.deepEqual(o.request, { video: ['H264'], audio: ['OPUS', 'PCMU', 'PCMA'] });
  assert.deepEqual(o.video?.h264.map((c) => c.payloadType), [102, 106, 127, 112]);
  assert.equal(o.video?.media.mid, '0');
  assert.equal(o.audio?.media.mid, '1');
});

test('the payload type follows the stream profile', { timeout: 5000 }, () => {
  const o = parseOffer(CHROME_OFFER);
  // x264 at fast presets: Constrained Baseline (42 C0) → the 42e01f entry, not plain Baseline 42001f.
  assert.equal(chooseVideo(o, h264(0x42, 0xc0))?.codec.payloadType, 106);
  assert.equal(chooseVideo(o, h264(0x4d, 0x40))?.codec.payloadType, 127);
  assert.equal(chooseVideo(o, h264(0x64, 0x00))?.codec.payloadType, 112);
  // Unknown profile or no SPS yet: the first fit entry.
  assert.equal(chooseVideo(o, h264(0x6e, 0x00))?.codec.payloadType, 102);
  assert.equal(chooseVideo(o, { kind: 'video', codec: { name: 'H264', clockRate: 90000 } })?.codec.payloadType, 102);
  assert.equal(chooseVideo(o, { kind: 'video', codec: { name: 'H265', clockRate: 90000 } }), undefined);
  assert.equal(chooseVideo(o, undefined), undefined);
});

test('profile classes as WebRTC names them', { timeout: 5000 }, () => {
  assert.equal(h264Profile(0x42, 0xe0), 'constrained-baseline');
  assert.equal(h264Profile(0x42, 0x00), 'baseline');
  assert.equal(h264Profile(0x4d, 0x80), 'constrained-baseline');
  assert.equal(h264Profile(0x4d, 0x00), 'main');
  assert.equal(h264Profile(0x64, 0x0c), 'constrained-high');
  assert.equal(h264Profile(0x64, 0x00), 'high');
  assert.equal(h264Profile(0x7a, 0x00), 'other');
});

test('audio: the first offered codec the stream has', { timeout: 5000 }, () => {
  const o = parseOffer(CHROME_OFFER);
  assert.equal(chooseAudio(o, [audio('PCMA'), audio('OPUS')])?.codec.name, 'opus');
  assert.equal(chooseAudio(o, [audio('PCMA')])?.codec.payloadType, 8);
  assert.equal(chooseAudio(o, [audio('PCMA', 16000)]), undefined, 'G.711 at 16 kHz is not what browsers take');
  assert.equal(chooseAudio(o, [h264(0x42, 0xc0)]), undefined);
});

const SESSION_TRANSPORT = ['a=ice-ufrag:abcd', 'a=ice-pwd:0123456789abcdefghijkl', 'a=fingerprint:sha-256 AB:CD:EF:01'];

test('static payload types without rtpmap, session-level direction, sendonly lines', { timeout: 5000 }, () => {
  // ICE and DTLS at session level, as Firefox writes them.
  const sdp = ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=recvonly', ...SESSION_TRANSPORT, 'm=audio 9 RTP/AVP 8 0', 'a=mid:a', ''].join('\r\n');
  const o = parseOffer(sdp);
  assert.deepEqual(o.request, { audio: ['PCMA', 'PCMU'] });
  const sendonly = sdp.replace('a=recvonly', 'a=sendonly');
  assert.throws(() => parseOffer(sendonly), (e: unknown) => e instanceof OfferError && /no video or audio m-line we can send to/.test(e.message));
});

test('offers we cannot serve say why', { timeout: 5000 }, () => {
  for (const bad of ['', 'hello', '{"type":"offer"}']) assert.throws(() => parseOffer(bad), /not SDP/);
  const vp8only = CHROME_OFFER.replace(/a=fmtp:\d+ level-asymmetry-allowed=1;packetization-mode=1[^\r\n]*\r\n/g, '').replace(
    /m=audio[\s\S]*$/,
    '',
  );
  assert.throws(() => parseOffer(vp8only), (e: unknown) => e instanceof OfferError && /H264\(packetization-mode=0\)/.test(e.message) && /packetization-mode=1/.test(e.message));
  const g722 = ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', 'm=audio 9 UDP/TLS/RTP/SAVPF 9', 'a=mid:0', 'a=recvonly', 'a=rtpmap:9 G722/8000', ''].join('\r\n');
  assert.throws(() => parseOffer(g722), /audio accepts G722 but none of/);
});

test('extra candidates: ip takes the host port, ip:port its own; added once per m-section', { timeout: 5000 }, () => {
  const host = 'candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host';
  assert.deepEqual(
    extraCandidates(host, ['203.0.113.7', '198.51.100.1:8555', '[2001:db8::1]:9000']).map((c) => c.split(' ').slice(4, 6).join(' ')),
    ['203.0.113.7 50000', '198.51.100.1 8555', '2001:db8::1 9000'],
  );
  assert.deepEqual(extraCandidates('candidate:1 1 tcp 1 10.0.0.5 9 typ host tcptype active', ['1.2.3.4']), []);
  const sdp = ['v=0', 'm=video 9 X 96', 'a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host', 'a=candidate:2 1 udp 2130706431 10.0.0.6 50001 typ host', 'm=audio 9 X 111', 'a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host', ''].join('\r\n');
  const out = withExtraCandidates(sdp, ['1.2.3.4']);
  assert.equal(out.match(/1\.2\.3\.4 50000 typ host/g)?.length, 2);
  assert.equal(withExtraCandidates(sdp, []), sdp);
});

test('an offer the WebRTC library could not connect with is an OfferError (400) naming what is missing', { timeout: 5000 }, () => {
  const without = (re: RegExp) => CHROME_OFFER.split('\r\n').filter((l) => !re.test(l)).join('\r\n');
  const cases: [string, RegExp][] = [
    [without(/^a=ice-ufrag:/), /offer has no a=ice-ufrag for its video m-line \(mid 0\)/],
    [without(/^a=ice-pwd:/), /offer has no a=ice-pwd for its video m-line/],
    [without(/^a=fingerprint:/), /offer has no a=fingerprint for its video m-line \(mid 0\) \(DTLS needs it\)/],
    [CHROME_OFFER.replace(/a=ice-ufrag:\S+/g, 'a=ice-ufrag:'), /no a=ice-ufrag/],
    [CHROME_OFFER.replace(/a=ice-ufrag:\S+/g, 'a=ice-ufrag:a"b'), /ice-ufrag for its video m-line \(mid 0\) is not ICE characters/],
    [CHROME_OFFER.replace(/a=fingerprint:[^\r\n]+/g, 'a=fingerprint:sha-256 nothex'), /a=fingerprint for its video m-line \(mid 0\) is not/],
    [['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', ...SESSION_TRANSPORT, ''].join('\r\n'), /offer has no m-line/],
  ];
  for (const [sdp, why] of cases) assert.throws(() => parseOffer(sdp), (e: unknown) => e instanceof OfferError && why.test(e.message), String(why));
  // Only the audio line without ICE: the audio line is named.
  const audioBare = CHROME_OFFER.replace(/(m=audio[\s\S]*?)a=ice-ufrag:\S+\r\n/, '$1');
  assert.throws(() => parseOffer(audioBare), /no a=ice-ufrag for its audio m-line \(mid 1\)/);
  // Session-level credentials count for every m-line.
  const sessionLevel = CHROME_OFFER.replace(/a=ice-ufrag:\S+\r\n/g, '').replace('t=0 0\r\n', 't=0 0\r\na=ice-ufrag:Kq7Q\r\n');
  assert.ok(parseOffer(sessionLevel).video);
});
