// The JSON messages of go2rtc's WebSocket API (/api/ws) that carry WebRTC signalling, as go2rtc
// 1.9.x reads and writes them (internal/api/ws/ws.go, internal/webrtc/webrtc.go, candidates.go):
//   in:  {"type":"webrtc","value":{"type":"offer","sdp":"…","ice_servers":[…]}}   (API v2)
//        {"type":"webrtc/offer","value":"<sdp>"}                                    (API v1)
//        {"type":"webrtc/candidate","value":"candidate:…"}   ('' = end of candidates)
//   out: {"type":"webrtc","value":{"type":"answer","sdp":"…"}} resp. {"type":"webrtc/answer","value":"<sdp>"}
//        {"type":"webrtc/candidate","value":"candidate:…"}
//        {"type":"error","value":"<message type>: <reason>"}
// and MSE (parseMediaMessage): in {"type":"mse","value":"<codecs>"}, out {"type":"mse","value":"video/mp4; codecs=…"}
// followed by binary messages (the init segment, then one moof+mdat each); HLS: in
// {"type":"hls","value":"<codecs>"}, out {"type":"hls","value":"<master playlist of a new HLS session>"}.
// go2rtc prefixes an error with the type of the message that failed; go2rtc's own player
// (video-rtc.js) closes its peer only on errors containing "webrtc/offer", so the prefix matters.
import type { WebRtcSettings } from '../outputs/webrtc/settings.js';

export type IceServer = WebRtcSettings['iceServers'][number];

export type Incoming =
  | {
      kind: 'offer';
      /** The message type, which also decides the answer's form and the error prefix. */
      type: 'webrtc' | 'webrtc/offer';
      sdp: string;
      /** Given (even empty) = use these instead of the configured ones, as go2rtc does. */
      iceServers?: IceServer[];
    }
  | { kind: 'candidate'; candidate: string | null }
  | { kind: 'unknown'; type: string };

/**
 * A message we cannot use. `prefix` is the error's "<type>:" part. `fatal` = go2rtc would drop
 * the connection (its ReadJSON fails on anything that is not a {"type":string,…} object).
 */
export class MessageError extends Error {
  constructor(
    readonly prefix: string,
    message: string,
    readonly fatal = false,
  ) {
    super(message);
    this.name = 'MessageError';
  }
}

const MAX_ICE_SERVERS = 8;
const MAX_URLS = 8;
const MAX_FIELD = 512;
const ICE_URL = /^(stun|stuns|turn|turns):[^\s]+$/i;

export function parseMessage(text: string): Incoming {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    throw new MessageError('webrtc', `bad JSON: ${(e as Error).message}`, true);
  }
  if (!isObject(msg) || typeof msg.type !== 'string') {
    throw new MessageError('webrtc', 'a message must be a JSON object {"type":"…","value":…}', true);
  }
  const { type, value } = msg;
  switch (type) {
    case 'webrtc':
      return parseOfferV2(value);
    case 'webrtc/offer':
      if (typeof value !== 'string' || value === '') throw new MessageError(type, 'value must be the SDP offer as a string');
      return { kind: 'offer', type, sdp: value };
    case 'webrtc/candidate':
      return { kind: 'candidate', candidate: parseCandidate(value) };
    default:
      return { kind: 'unknown', type: errorPrefix(type) };
  }
}

function parseOfferV2(value: unknown): Incoming {
  const p = 'webrtc';
  if (!isObject(value)) throw new MessageError(p, 'value must be {"type":"offer","sdp":"…"}');
  // go2rtc does not look at value.type; a client sending anything but an offer is confused.
  if (value.type !== undefined && value.type !== 'offer') throw new MessageError(p, `expected an offer, got type ${JSON.stringify(value.type)}`);
  if (typeof value.sdp !== 'string' || value.sdp === '') throw new MessageError(p, 'value.sdp must be the SDP offer as a string');
  const policy = value.ice_transport_policy;
  if (policy !== undefined && policy !== '' && policy !== 'all') {
    if (policy === 'relay') throw new MessageError(p, 'ice_transport_policy "relay" is not supported');
    throw new MessageError(p, `unknown ICE transport policy: ${String(policy)}`);
  }
  const offer: Incoming = { kind: 'offer', type: 'webrtc', sdp: value.sdp };
  if (value.ice_servers !== undefined && value.ice_servers !== null) offer.iceServers = parseIceServers(value.ice_servers);
  return offer;
}

/** Home Assistant passes its own STUN/TURN servers (Nabu Casa's TURN for remote access among them). */
export function parseIceServers(v: unknown): IceServer[] {
  const p = 'webrtc';
  if (!Array.isArray(v)) throw new MessageError(p, 'ice_servers must be an array');
  if (v.length > MAX_ICE_SERVERS) throw new MessageError(p, `ice_servers: at most ${MAX_ICE_SERVERS} servers`);
  return v.map((s: unknown, i) => {
    if (!isObject(s)) throw new MessageError(p, `ice_servers[${i}] must be an object`);
    const urls = typeof s.urls === 'string' ? [s.urls] : s.urls;
    if (!Array.isArray(urls) || urls.length === 0 || urls.length > MAX_URLS) {
      throw new MessageError(p, `ice_servers[${i}].urls must be a URL or a list of 1 to ${MAX_URLS} URLs`);
    }
    for (const u of urls) {
      if (typeof u !== 'string' || u.length > MAX_FIELD || !ICE_URL.test(u)) {
        throw new MessageError(p, `ice_servers[${i}].urls: not a stun:/stuns:/turn:/turns: URL: ${JSON.stringify(u)?.slice(0, 80)}`);
      }
    }
    const server: IceServer = { urls: urls as string[] };
    for (const k of ['username', 'credential'] as const) {
      const x = s[k];
      if (x === undefined || x === null || x === '') continue;
      if (typeof x !== 'string' || x.length > MAX_FIELD) throw new MessageError(p, `ice_servers[${i}].${k} must be a string`);
      server[k] = x;
    }
    return server;
  });
}

/** A candidate line ("candidate:…", "a=candidate:…" or bare); '' or null = end of candidates. */
function parseCandidate(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw new MessageError('webrtc/candidate', 'value must be a candidate string');
  const line = v.trim().replace(/^a=/, '');
  if (line === '') return null;
  return line.startsWith('candidate:') ? line : `candidate:${line}`;
}

/**
 * A request for media over the socket itself that parseMessage leaves to the caller (it reads
 * WebRTC signalling only): `{"type":"mse","value":"<codecs, comma-separated>"}` (go2rtc's
 * internal/mp4/ws.go; a missing or non-string value is an empty list, i.e. go2rtc's defaults),
 * and `{"type":"mjpeg"}`.
 */
export type MediaMessage = { type: 'mse' | 'hls'; codecs: string } | { type: 'mjpeg' };

export function parseMediaMessage(text: string): MediaMessage | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(msg)) return undefined;
  // go2rtc's {"type":"mjpeg"} has no value (internal/mjpeg/mjpeg.go).
  if (msg.type === 'mjpeg') return { type: 'mjpeg' };
  // go2rtc's `hls` (internal/hls/ws.go) carries the same codec list as `mse`.
  if (msg.type !== 'mse' && msg.type !== 'hls') return undefined;
  return { type: msg.type, codecs: typeof msg.value === 'string' ? msg.value.slice(0, 1024) : '' };
}

/**
 * `{"type":"hls","value":"<master playlist>"}`: go2rtc's answer to `hls` is the text of the new
 * session's master playlist, whose one URI is relative (`hls/playlist.m3u8?id=<id>`); its player
 * replaces `hls/` with `http(s)://<host>/api/hls/` and plays it as a data: URL.
 */
export function hlsMessage(master: string): string {
  return JSON.stringify({ type: 'hls', value: master });
}

/** `{"type":"mse","value":"video/mp4; codecs=\"…\""}`: go2rtc's answer, before the binary segments. */
export function mseMessage(mime: string): string {
  return JSON.stringify({ type: 'mse', value: mime });
}

export function answerMessage(type: 'webrtc' | 'webrtc/offer', sdp: string): string {
  return type === 'webrtc'
    ? JSON.stringify({ type: 'webrtc', value: { type: 'answer', sdp } })
    : JSON.stringify({ type: 'webrtc/answer', value: sdp });
}

export function candidateMessage(candidate: string): string {
  return JSON.stringify({ type: 'webrtc/candidate', value: candidate.startsWith('candidate:') ? candidate : `candidate:${candidate}` });
}

export function errorMessage(prefix: string, reason: string): string {
  return JSON.stringify({ type: 'error', value: `${prefix}: ${reason}` });
}

/**
 * An unknown type as the start of its error: printable, bounded, never "" (the error must name
 * something), and never holding "webrtc/offer" (go2rtc's player would close its peer on it).
 */
export function errorPrefix(type: string): string {
  const t = type.replace(/[^\x20-\x7e]/g, '?').slice(0, 64).replaceAll('webrtc/offer', 'webrtc_offer');
  return t === '' ? 'ws' : t;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
