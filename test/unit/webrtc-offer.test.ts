import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OfferError, chooseAudio, chooseMic, chooseVideo, h264Profile, parseOffer } from '../../src/outputs/webrtc/offer.js';
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
  assert.deepEqual(o.video?.codecs.map((c) => [c.name, c.codec.payloadType]), [['H264', 102], ['H264', 106], ['H264', 127], ['H264', 112]]);
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
  // Only a microphone (issue 18): a talker, refused later by a stream with no backchannel.
  const sendonly = parseOffer(sdp.replace('a=recvonly', 'a=sendonly'));
  assert.deepEqual([sendonly.request, sendonly.mic?.media.mid, sendonly.mic?.codecs.map((c) => c.name)], [{}, 'a', ['PCMA', 'PCMU']]);
  assert.throws(() => parseOffer(sdp.replace('a=recvonly', 'a=inactive')), (e: unknown) => e instanceof OfferError && /no video or audio m-line we can send to/.test(e.message));
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

// Issue 16: H.265 as Chrome 136+ offers it (one payload type per profile, in the low dynamic
// range, each with its rtx; level-id from the machine's decoder), and Safari without any fmtp.
const H265_LINES = (pt: number, fmtp: string | undefined) => [`a=rtpmap:${pt} H265/90000`, 'a=rtcp-fb:' + pt + ' nack', 'a=rtcp-fb:' + pt + ' nack pli', ...(fmtp ? [`a=fmtp:${pt} ${fmtp}`] : []), `a=rtpmap:${pt + 1} rtx/90000`, `a=fmtp:${pt + 1} apt=${pt}`];
/** CHROME_OFFER's video m-line with H265 payload types added after its H.264 ones (or alone with `only`). */
function withH265(entries: [number, string | undefined][], only = false): string {
  const [head, rest] = CHROME_OFFER.split(/(?=m=video)/) as [string, string];
  const [video, audio] = rest.split(/(?=m=audio)/) as [string, string];
  const pts = entries.flatMap(([pt]) => [pt, pt + 1]);
  let lines = video.split('\r\n');
  if (only) lines = lines.filter((l) => !/^a=(rtpmap|fmtp|rtcp-fb):/.test(l));
  lines[0] = only ? lines[0]!.replace(/(SAVPF)( \d+)+/, `$1 ${pts.join(' ')}`) : `${lines[0]} ${pts.join(' ')}`;
  const at = lines.findIndex((l) => l === '');
  lines.splice(at < 0 ? lines.length : at, 0, ...entries.flatMap(([pt, f]) => H265_LINES(pt, f)));
  return head + lines.join('\r\n') + audio;
}
const CHROME_H265 = 'level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST';

// A real x265 SPS (320x180: Main, Main tier, level 2 = level-id 60; compatible with Main and Main 10).
const X265_SPS = Buffer.from('42010101600000030090000003000003003ca00a080b9f796566924caf016808000003000800000300c840', 'hex');
/** X265_SPS with another profile_tier_level: profile byte (space|tier|idc), compatibility flags, level. */
function hsps(profileByte: number, compat: number, level: number): Buffer {
  const raw = rbsp(X265_SPS);
  raw[3] = profileByte;
  raw.writeUInt32BE(compat >>> 0, 4);
  raw[14] = level;
  return escape(raw);
}
function rbsp(nal: Buffer): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const b of nal) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}
function escape(raw: Buffer): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const b of raw) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}
const h265 = (sps?: Buffer): Track => ({ kind: 'video', codec: { name: 'H265', clockRate: 90000 }, params: sps ? { sps } : {} });

test('H.265 offers: the request lists the offered video codecs in offer order', { timeout: 5000 }, () => {
  const only = parseOffer(withH265([[49, CHROME_H265]], true));
  assert.deepEqual(only.request.video, ['H265']);
  assert.deepEqual(only.video?.codecs.map((c) => [c.name, c.codec.payloadType]), [['H265', 49]]);
  const both = parseOffer(withH265([[49, CHROME_H265], [51, 'level-id=93;profile-id=2;tier-flag=0;tx-mode=SRST']]));
  assert.deepEqual(both.request, { video: ['H264', 'H265'], audio: ['OPUS', 'PCMU', 'PCMA'] });
  assert.deepEqual(both.video?.codecs.filter((c) => c.name === 'H265').map((c) => c.codec.payloadType), [49, 51]);
  // H265 first in the offer: first in the request (the stream is asked in the viewer's order).
  const first = parseOffer(withH265([[49, CHROME_H265]], true).replace(/(m=video \d+ \S+) 49 50/, '$1 49 50 102').replace('a=rtpmap:49', 'a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:49'));
  assert.deepEqual(first.request.video, ['H265', 'H264']);
  // Safari's H265 without fmtp: the defaults (Main, Main tier, level 3.1, SRST).
  assert.deepEqual(parseOffer(withH265([[104, undefined]], true)).request.video, ['H265']);
});

test('H.265 offers we cannot send to are refused by name', { timeout: 5000 }, () => {
  const refused = (sdp: string) => parseOffer(sdp.replace(/m=audio[\s\S]*$/, ''));
  for (const fmtp of ['level-id=93;profile-id=1;tier-flag=0;tx-mode=MRST', 'profile-id=main;tier-flag=0', 'level-id=93;profile-id=1;tier-flag=2', 'profile-space=1;profile-id=1']) {
    assert.throws(
      () => refused(withH265([[49, fmtp]], true)),
      (e: unknown) => e instanceof OfferError && e.message.startsWith('offer has no video codec we can send: H264 with packetization-mode=1, H265 (it accepts'),
      fmtp,
    );
  }
  assert.throws(() => refused(withH265([[49, 'tx-mode=MRST']], true)), /\(it accepts H265\(tx-mode=MRST\), rtx\)$/);
  assert.throws(() => refused(withH265([[49, 'profile-id=main;tier-flag=0']], true)), /\(it accepts H265\(profile-id=main;tier-flag=0\), rtx\)$/);
  // tx-mode is read as libwebrtc reads it, in any case.
  assert.deepEqual(refused(withH265([[49, 'tx-mode=srst']], true)).request.video, ['H265']);
});

test('H.265 answer: the payload type whose profile decodes the stream, its profile and tier, level no higher than offered', { timeout: 5000 }, () => {
  const main10 = 'level-id=120;profile-id=2;tier-flag=0;tx-mode=SRST';
  const o = parseOffer(withH265([[49, 'level-id=180;profile-id=1;tier-flag=0;tx-mode=SRST'], [51, main10]]));
  // x265 Main, level 2: Main payload type; answered with the stream's lower level.
  const v = chooseVideo(o, h265(X265_SPS));
  assert.equal(v?.codec.payloadType, 49);
  assert.deepEqual(v?.fmtp, { 'level-id': '60', 'profile-id': '1', 'tier-flag': '0', 'tx-mode': 'SRST' });
  assert.equal(v?.description, 'H265 pt 49 profile-id=1 level-id=60');
  assert.ok(!Object.keys(v?.fmtp ?? {}).some((k) => k.startsWith('sprop-')), 'no parameter sets in the answer: WebRTC takes them in band');
  // A Main stream at level 5.1 (153): the Main entry covers its level and is its own profile.
  assert.equal(chooseVideo(o, h265(hsps(0x01, 0x60000000, 153)))?.codec.payloadType, 49);
  // A Main 10 stream: only the Main 10 entry decodes it; answered at the offer's level (lower than the stream's).
  const m10 = chooseVideo(o, h265(hsps(0x02, 0x20000000, 150)));
  assert.equal(m10?.codec.payloadType, 51);
  assert.deepEqual(m10?.fmtp, { 'level-id': '120', 'profile-id': '2', 'tier-flag': '0', 'tx-mode': 'SRST' });
  // Main into a Main 10 decoder (the Main stream says it is compatible) when that is all there is.
  const only10 = parseOffer(withH265([[51, main10]], true));
  assert.equal(chooseVideo(only10, h265(X265_SPS))?.fmtp?.['profile-id'], '2');
  // Not decodable: Main 10 into Main only, a High-tier stream into Main tier.
  const onlyMain = parseOffer(withH265([[49, CHROME_H265]], true));
  assert.equal(chooseVideo(onlyMain, h265(hsps(0x02, 0x20000000, 93))), undefined);
  assert.equal(chooseVideo(onlyMain, h265(hsps(0x21, 0x60000000, 93))), undefined);
  // No SPS known yet: the first offered entry, at its own level.
  assert.deepEqual(chooseVideo(o, h265())?.fmtp, { 'level-id': '180', 'profile-id': '1', 'tier-flag': '0', 'tx-mode': 'SRST' });
  // Safari without fmtp: the defaults answered explicitly, no tx-mode (it named none).
  assert.deepEqual(chooseVideo(parseOffer(withH265([[104, undefined]], true)), h265(X265_SPS))?.fmtp, { 'level-id': '60', 'profile-id': '1', 'tier-flag': '0' });
  // The other codec's payload types are never chosen for a track.
  assert.equal(chooseVideo(onlyMain, h264(0x42, 0xc0)), undefined);
  assert.equal(chooseVideo(parseOffer(CHROME_OFFER), h265(X265_SPS)), undefined);
  assert.equal(chooseVideo(o, h264(0x42, 0xc0))?.codec.payloadType, 106, 'H.264 beside H.265: H.264 as before');
});

// Issue 18: the viewer's microphone. go2rtc's player (video-rtc.js with media "microphone") puts a
// sendonly audio m-line first, then recvonly video and audio; other clients send audio sendrecv.
const audioLine = (mid: string, direction: string) =>
  CHROME_OFFER.slice(CHROME_OFFER.indexOf('m=audio')).replace('a=mid:1', `a=mid:${mid}`).replace('a=recvonly', `a=${direction}`);
const videoPart = CHROME_OFFER.slice(0, CHROME_OFFER.indexOf('m=audio'));
const sessionPart = CHROME_OFFER.slice(0, CHROME_OFFER.indexOf('m=video'));

test("the microphone: go2rtc's player's sendonly line, or the sendrecv audio line; recvonly has none", { timeout: 5000 }, () => {
  const player = parseOffer(sessionPart + audioLine('0', 'sendonly') + videoPart.slice(sessionPart.length).replace('a=mid:0', 'a=mid:1') + audioLine('2', 'recvonly'));
  assert.equal(player.mic?.media.mid, '0');
  assert.equal(player.audio?.media.mid, '2', 'our audio goes on the recvonly line');
  assert.deepEqual(player.mic?.codecs.map((c) => c.name), ['OPUS', 'PCMU', 'PCMA']);
  // The camera's codec when offered (no conversion), else the first the offer lists.
  assert.deepEqual(chooseMic(player, { name: 'PCMA', clockRate: 8000 }), { mid: '0', codec: player.mic!.codecs[2]!.codec, name: 'PCMA' });
  assert.equal(chooseMic(player, { name: 'AAC', clockRate: 16000 })?.name, 'OPUS');

  const both = parseOffer(CHROME_OFFER.replace(/a=recvonly(?![\s\S]*a=recvonly)/, 'a=sendrecv'));
  assert.equal(both.mic?.media.mid, '1');
  assert.equal(both.audio?.media.mid, '1');
  // One line, one codec both ways: the one answered for our audio.
  const sending = { mid: '1', codec: both.audio!.codecs[0]!.codec };
  assert.equal(chooseMic(both, { name: 'PCMA', clockRate: 8000 }, sending)?.name, 'OPUS');

  assert.equal(parseOffer(CHROME_OFFER).mic, undefined, 'recvonly audio is no microphone');
  assert.equal(chooseMic(parseOffer(CHROME_OFFER), { name: 'PCMA', clockRate: 8000 }), undefined);
});

test('a talker alone (one sendonly audio line) parses with nothing to receive; a lone recvonly line we cannot serve still fails', { timeout: 5000 }, () => {
  const talk = parseOffer(sessionPart + audioLine('0', 'sendonly'));
  assert.deepEqual(talk.request, {});
  assert.equal(talk.mic?.media.mid, '0');
  assert.equal(talk.video, undefined);
  assert.equal(talk.audio, undefined);
  assert.throws(() => parseOffer(sessionPart + audioLine('0', 'inactive')), OfferError);
  // A sendonly line in codecs we cannot decode is no microphone.
  assert.throws(() => parseOffer(sessionPart + audioLine('0', 'sendonly').replace(/^m=audio 9 UDP\/TLS\/RTP\/SAVPF .*$/m, 'm=audio 9 UDP/TLS/RTP/SAVPF 9').replace(/^a=rtpmap:(?!9 ).*$/gm, '')), OfferError);
});

test("a watcher's microphone line it could not connect (no ICE credentials of its own or the session's) is dropped, not a 400; a talker alone with one is refused naming it", { timeout: 5000 }, () => {
  // Chrome writes ICE and DTLS per m-line: the microphone line here has none, the others have theirs.
  const bareMic = audioLine('0', 'sendonly').replace(/a=ice-ufrag:\S+\r\n/, '').replace(/a=ice-pwd:\S+\r\n/, '');
  const watcher = parseOffer(sessionPart + bareMic + videoPart.slice(sessionPart.length).replace('a=mid:0', 'a=mid:1') + audioLine('2', 'recvonly'));
  assert.equal(watcher.mic, undefined, 'no microphone');
  assert.equal(watcher.video?.media.mid, '1');
  assert.equal(watcher.audio?.media.mid, '2');
  assert.throws(() => parseOffer(sessionPart + bareMic), (e: unknown) => e instanceof OfferError && /no a=ice-ufrag for its audio m-line \(mid 0\)/.test(e.message));
});
