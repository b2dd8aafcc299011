import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageError, answerMessage, candidateMessage, errorMessage, parseMessage } from '../../src/api/ws-messages.js';

const fails = (text: string, re: RegExp, fatal = false) =>
  assert.throws(() => parseMessage(text), (e: unknown) => e instanceof MessageError && re.test(`${e.prefix}: ${e.message}`) && e.fatal === fatal);

test('offers in both forms; ice_servers as Home Assistant sends them', () => {
  const v2 = parseMessage(
    JSON.stringify({
      type: 'webrtc',
      value: { type: 'offer', sdp: 'v=0\r\n', ice_servers: [{ urls: ['stun:stun.home-assistant.io:3478'] }, { urls: 'turn:t.example:3478?transport=udp', username: 'u', credential: 'p' }] },
    }),
  );
  assert.deepEqual(v2, {
    kind: 'offer',
    type: 'webrtc',
    sdp: 'v=0\r\n',
    iceServers: [{ urls: ['stun:stun.home-assistant.io:3478'] }, { urls: ['turn:t.example:3478?transport=udp'], username: 'u', credential: 'p' }],
  });
  // No ice_servers (or null): the configured ones; an empty list: none at all, as go2rtc does.
  assert.equal((parseMessage('{"type":"webrtc","value":{"type":"offer","sdp":"v=0"}}') as { iceServers?: unknown }).iceServers, undefined);
  assert.deepEqual((parseMessage('{"type":"webrtc","value":{"sdp":"v=0","ice_servers":[]}}') as { iceServers?: unknown }).iceServers, []);
  assert.deepEqual(parseMessage('{"type":"webrtc/offer","value":"v=0"}'), { kind: 'offer', type: 'webrtc/offer', sdp: 'v=0' });
});

test('candidates: prefixed, bare or a= lines; empty = end of candidates', () => {
  const c = (v: unknown) => parseMessage(JSON.stringify({ type: 'webrtc/candidate', value: v }));
  assert.deepEqual(c('candidate:1 1 udp 1 10.0.0.1 5000 typ host'), { kind: 'candidate', candidate: 'candidate:1 1 udp 1 10.0.0.1 5000 typ host' });
  assert.deepEqual(c('a=candidate:1 1 udp 1 10.0.0.1 5000 typ host'), { kind: 'candidate', candidate: 'candidate:1 1 udp 1 10.0.0.1 5000 typ host' });
  assert.deepEqual(c('1 1 udp 1 10.0.0.1 5000 typ host'), { kind: 'candidate', candidate: 'candidate:1 1 udp 1 10.0.0.1 5000 typ host' });
  assert.deepEqual(c(''), { kind: 'candidate', candidate: null });
  fails(JSON.stringify({ type: 'webrtc/candidate', value: 5 }), /^webrtc\/candidate: value must be/);
});

test('errors carry the failed message type; unreadable messages are fatal', () => {
  fails('{"type": webrtc', /^webrtc: bad JSON/, true);
  fails('[1,2]', /^webrtc: a message must be a JSON object/, true);
  fails('{"type":5}', /^webrtc: a message must be/, true);
  fails('{"type":"webrtc","value":"v=0"}', /^webrtc: value must be \{"type":"offer"/);
  fails('{"type":"webrtc","value":{"type":"answer","sdp":"v=0"}}', /^webrtc: expected an offer, got type "answer"/);
  fails('{"type":"webrtc","value":{"type":"offer"}}', /^webrtc: value\.sdp must be/);
  fails('{"type":"webrtc","value":{"sdp":"v=0","ice_transport_policy":"relay"}}', /relay" is not supported/);
  fails('{"type":"webrtc","value":{"sdp":"v=0","ice_transport_policy":"x"}}', /unknown ICE transport policy: x/);
  fails('{"type":"webrtc","value":{"sdp":"v=0","ice_servers":{}}}', /ice_servers must be an array/);
  fails('{"type":"webrtc","value":{"sdp":"v=0","ice_servers":[{"urls":["file:///etc/passwd"]}]}}', /ice_servers\[0\]\.urls: not a stun/);
  fails('{"type":"webrtc","value":{"sdp":"v=0","ice_servers":[{"urls":[]}]}}', /ice_servers\[0\]\.urls must be/);
  fails(`{"type":"webrtc","value":{"sdp":"v=0","ice_servers":${JSON.stringify(Array(9).fill({ urls: 'stun:a' }))}}}`, /at most 8/);
  fails('{"type":"webrtc/offer","value":{"sdp":"v=0"}}', /^webrtc\/offer: value must be the SDP offer/);
  assert.deepEqual(parseMessage('{"type":"mse","value":"avc1"}'), { kind: 'unknown', type: 'mse' });
});

test('outgoing shapes are go2rtc\'s', () => {
  assert.equal(answerMessage('webrtc', 'v=0'), '{"type":"webrtc","value":{"type":"answer","sdp":"v=0"}}');
  assert.equal(answerMessage('webrtc/offer', 'v=0'), '{"type":"webrtc/answer","value":"v=0"}');
  assert.equal(candidateMessage('1 1 udp 1 10.0.0.1 5000 typ host'), '{"type":"webrtc/candidate","value":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"}');
  assert.equal(errorMessage('webrtc', 'stream not found: x'), '{"type":"error","value":"webrtc: stream not found: x"}');
});
