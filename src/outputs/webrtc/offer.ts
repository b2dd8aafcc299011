// What a viewer's SDP offer accepts: the first receivable video m-line (H.264 with
// packetization-mode=1, H.265 in single-stream mode) and the first receivable audio m-line (Opus,
// PCMA, PCMU): the codec table's webrtc entries; and which of their payload types to answer for
// the stream's tracks, with which fmtp.
import { formatByEncoding, formatByStaticPayloadType, webrtcFormats, type CodecFormat } from '../../codecs/table.js';
import type { Codec, CodecName, MediaRequest, Track } from '../../core/media.js';
import { h265AnswerFmtp, h265Fit, offeredPtl, streamPtl } from './h265-fmtp.js';

/** The offer is malformed or asks for nothing we can send: the viewer's fault (HTTP 400). */
export class OfferError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OfferError';
  }
}

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface OfferCodec {
  payloadType: number;
  /** As written in a=rtpmap, e.g. 'H264', 'opus'. */
  name: string;
  clockRate: number;
  channels?: number;
  /** The a=fmtp parameters, keys lower-cased. */
  fmtp: Record<string, string>;
}

/** The ICE and DTLS attributes of an m-line, its own or else the session's. */
export interface OfferTransport {
  iceUfrag?: string;
  icePwd?: string;
  /** `a=fingerprint:<hash> <hex>`, as written. */
  fingerprint?: string;
}

export interface OfferMedia {
  /** Position of the m-line in the offer. */
  index: number;
  kind: string;
  port: number;
  mid?: string;
  direction: Direction;
  codecs: OfferCodec[];
  transport: OfferTransport;
}

/** An audio codec of the offer we can send, with our name for it. */
export interface AudioChoice {
  name: CodecName;
  codec: OfferCodec;
}

/** A video payload type of the offer we can send, with our name for its codec. */
export interface VideoChoice {
  name: CodecName;
  codec: OfferCodec;
}

export interface Offer {
  media: OfferMedia[];
  /** The m-line our video goes on, with its payload types we can send (H.264, H.265), in offer order. */
  video?: { media: OfferMedia; codecs: VideoChoice[] };
  /** The m-line our audio goes on, with the codecs we have, in offer order. */
  audio?: { media: OfferMedia; codecs: AudioChoice[] };
  /**
   * The viewer's microphone: its first sendonly audio m-line (go2rtc's player), else the audio
   * m-line we send on when that one is sendrecv; with the codecs of it we can decode.
   */
  mic?: { media: OfferMedia; codecs: AudioChoice[] };
  /** What to ask the stream for. */
  request: MediaRequest;
}

// G.711 has static payload types (RFC 3551) that an offer may list without an a=rtpmap line.
function staticCodec(pt: number): OfferCodec | undefined {
  const f = formatByStaticPayloadType(pt);
  return f ? { payloadType: pt, fmtp: {}, name: f.encoding, clockRate: f.clockRate!, channels: 1 } : undefined;
}

const DIRECTIONS = new Set<string>(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

export function parseOffer(sdp: string): Offer {
  if (typeof sdp !== 'string' || !/^v=0\r?\n/.test(sdp.trimStart())) {
    throw new OfferError('offer is not SDP (it must start with "v=0")');
  }
  const lines = sdp.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  const media: OfferMedia[] = [];
  let sessionDirection: Direction = 'sendrecv';
  const sessionTransport: OfferTransport = {};
  let cur: (OfferMedia & { pts: number[]; rtpmaps: Map<number, OfferCodec>; fmtps: Map<number, Record<string, string>>; dir?: Direction }) | undefined;
  const finish = () => {
    if (!cur) return;
    const c = cur;
    c.direction = c.dir ?? sessionDirection;
    c.codecs = c.pts.flatMap((pt) => {
      const base = c.rtpmaps.get(pt) ?? staticCodec(pt);
      return base ? [{ ...base, fmtp: c.fmtps.get(pt) ?? {} }] : [];
    });
    media.push({ index: c.index, kind: c.kind, port: c.port, mid: c.mid, direction: c.direction, codecs: c.codecs, transport: c.transport });
  };

  for (const line of lines) {
    if (line.startsWith('m=')) {
      finish();
      const m = /^m=(\S+) (\d+)(?:\/\d+)? (\S+)((?: \S+)*)$/.exec(line);
      if (!m) throw new OfferError(`offer has a malformed m-line: "${line}"`);
      const pts = m[4]!.trim().split(' ').filter(Boolean).map(Number).filter((n) => Number.isInteger(n));
      cur = { index: media.length, kind: m[1]!, port: Number(m[2]), direction: 'sendrecv', codecs: [], transport: {}, pts, rtpmaps: new Map(), fmtps: new Map() };
      continue;
    }
    if (!line.startsWith('a=')) continue;
    const attr = line.slice(2);
    if (DIRECTIONS.has(attr)) {
      if (cur) cur.dir = attr as Direction;
      else sessionDirection = attr as Direction;
      continue;
    }
    const transport = cur ? cur.transport : sessionTransport;
    if (attr.startsWith('ice-ufrag:')) transport.iceUfrag = attr.slice(10).trim();
    else if (attr.startsWith('ice-pwd:')) transport.icePwd = attr.slice(8).trim();
    else if (attr.startsWith('fingerprint:')) transport.fingerprint = attr.slice(12).trim();
    if (!cur) continue;
    if (attr.startsWith('mid:')) {
      cur.mid = attr.slice(4).trim();
    } else if (attr.startsWith('rtpmap:')) {
      const r = /^rtpmap:(\d+) ([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(attr);
      if (r) {
        const pt = Number(r[1]);
        const codec: OfferCodec = { payloadType: pt, name: r[2]!, clockRate: Number(r[3]), fmtp: {} };
        if (r[4]) codec.channels = Number(r[4]);
        cur.rtpmaps.set(pt, codec);
      }
    } else if (attr.startsWith('fmtp:')) {
      const f = /^fmtp:(\d+) (.*)$/.exec(attr);
      if (f) cur.fmtps.set(Number(f[1]), parseFmtp(f[2]!));
    }
  }
  finish();
  if (media.length === 0) throw new OfferError('offer has no m-line');
  for (const m of media) m.transport = { ...sessionTransport, ...definedOnly(m.transport) };
  const offer = chooseLines(media);
  for (const line of [offer.video?.media, offer.audio?.media]) if (line) checkTransport(line);
  const mic = offer.mic?.media;
  if (mic && mic !== offer.audio?.media) {
    // A microphone line that could not connect is dropped: only a talker alone has nothing else.
    try {
      checkTransport(mic);
    } catch (e) {
      if (!offer.video && !offer.audio) throw e;
      delete offer.mic;
    }
  }
  return offer;
}

function definedOnly(t: OfferTransport): OfferTransport {
  return Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined && v !== '')) as OfferTransport;
}

// RFC 8839 ice-char: ALPHA / DIGIT / "+" / "/"; ufrag 4-256 of them, pwd 22-256. Checked loosely
// (any length from 1): the point is a 400 that names the problem, not the WebRTC library failing.
const ICE_CHARS = /^[A-Za-z0-9+/]{1,256}$/;
const FINGERPRINT = /^[A-Za-z0-9-]+ [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$/;

/**
 * What the WebRTC library needs to connect to the viewer at all: ICE credentials and a DTLS
 * fingerprint, on the m-line or at session level. Without them it throws its own error (a 500);
 * the offer is the viewer's fault, so it is an OfferError (400) that says what is missing.
 */
function checkTransport(m: OfferMedia): void {
  const where = `its ${m.kind} m-line${m.mid !== undefined ? ` (mid ${m.mid})` : ''}`;
  const t = m.transport;
  if (!t.iceUfrag) throw new OfferError(`offer has no a=ice-ufrag for ${where}`);
  if (!ICE_CHARS.test(t.iceUfrag)) throw new OfferError(`offer's a=ice-ufrag for ${where} is not ICE characters (letters, digits, "+", "/")`);
  if (!t.icePwd) throw new OfferError(`offer has no a=ice-pwd for ${where}`);
  if (!ICE_CHARS.test(t.icePwd)) throw new OfferError(`offer's a=ice-pwd for ${where} is not ICE characters (letters, digits, "+", "/")`);
  if (!t.fingerprint) throw new OfferError(`offer has no a=fingerprint for ${where} (DTLS needs it)`);
  if (!FINGERPRINT.test(t.fingerprint)) throw new OfferError(`offer's a=fingerprint for ${where} is not "<hash> <hex:hex:…>"`);
}

function parseFmtp(s: string): Record<string, string> {
  // Keys come from the offer: no prototype for `__proto__=` or `constructor=` to reach.
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const part of s.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    out[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim();
  }
  return out;
}

function receivable(m: OfferMedia): boolean {
  return m.port !== 0 && (m.direction === 'recvonly' || m.direction === 'sendrecv');
}

/**
 * Offered fmtp parameters a codec must be able to read, beyond the table's `requires`: H.265's
 * profile-id, tier-flag and level-id (an offer with one we cannot read matches nothing, as in
 * libwebrtc).
 */
const READABLE: Partial<Record<CodecName, (fmtp: Record<string, string>) => boolean>> = {
  H265: (fmtp) => offeredPtl(fmtp) !== undefined,
};

/**
 * The codec we can send in an offered format, if any: one the table sends over WebRTC, at its
 * clock rate, with what it requires (H.264: packetization-mode=1, as mode 0 cannot carry a NAL
 * unit larger than the MTU; H.265: tx-mode SRST, one RTP stream, also when the offer leaves it out).
 */
function sendable(c: OfferCodec, kind: 'video' | 'audio'): CodecFormat | undefined {
  const f = formatByEncoding(c.name);
  if (!f || f.kind !== kind || !f.webrtc || c.clockRate !== f.webrtc.clockRate) return undefined;
  const r = f.webrtc.requires;
  if (r && (c.fmtp[r.key] ?? r.absent).toUpperCase() !== r.value.toUpperCase()) return undefined;
  return READABLE[f.name]?.(c.fmtp) === false ? undefined : f;
}

/**
 * What the formats of `kind` we send need, for a refusal: "H264 with packetization-mode=1, H265",
 * "OPUS/48000, …". A requirement an offer meets by leaving the parameter out goes unsaid.
 */
function needs(kind: 'video' | 'audio'): string {
  return webrtcFormats(kind)
    .map(({ name, webrtc }) => {
      const r = webrtc!.requires;
      if (r) return r.absent === r.value ? name : `${name} with ${r.key}=${r.value}`;
      return kind === 'video' ? name : `${name}/${webrtc!.clockRate}`;
    })
    .join(', ');
}

function chooseLines(media: OfferMedia[]): Offer {
  const offer: Offer = { media, request: {} };
  const problems: string[] = [];
  const videoLine = media.find((m) => m.kind === 'video' && receivable(m));
  if (videoLine) {
    const codecs: VideoChoice[] = videoLine.codecs.flatMap((c) => {
      const name = sendable(c, 'video')?.name;
      return name ? [{ name, codec: c }] : [];
    });
    if (!videoLine.mid) problems.push('its video m-line has no a=mid');
    else if (codecs.length) {
      offer.video = { media: videoLine, codecs };
      offer.request.video = [...new Set(codecs.map((v) => v.name))];
    } else problems.push(`its video accepts ${listCodecs(videoLine)} but none of ${needs('video')}`);
  }
  const audioLine = media.find((m) => m.kind === 'audio' && receivable(m));
  if (audioLine) {
    const codecs: AudioChoice[] = [];
    for (const c of audioLine.codecs) {
      const name = sendable(c, 'audio')?.name;
      if (name && !codecs.some((a) => a.name === name)) codecs.push({ name, codec: c });
    }
    if (!audioLine.mid) problems.push('its audio m-line has no a=mid');
    else if (codecs.length) {
      offer.audio = { media: audioLine, codecs };
      offer.request.audio = codecs.map((a) => a.name);
    } else problems.push(`its audio accepts ${listCodecs(audioLine)} but none of ${needs('audio')}`);
  }
  const micLine = media.find((m) => m.kind === 'audio' && m.port !== 0 && m.direction === 'sendonly' && m.mid) ?? (audioLine?.direction === 'sendrecv' && audioLine.mid ? audioLine : undefined);
  if (micLine) {
    const codecs: AudioChoice[] = [];
    for (const c of micLine.codecs) {
      const name = sendable(c, 'audio')?.name;
      if (name && !codecs.some((a) => a.name === name)) codecs.push({ name, codec: c });
    }
    if (codecs.length) offer.mic = { media: micLine, codecs };
  }
  // A talker alone (a microphone, nothing to receive) is answered once the stream says it has a backchannel.
  if (!offer.video && !offer.audio && !(offer.mic && micLine?.direction === 'sendonly' && !videoLine && !audioLine)) {
    if (!videoLine && !audioLine) throw new OfferError('offer has no video or audio m-line we can send to (recvonly or sendrecv)');
    // Video alone and refused: say so in the words a user can act on.
    if (!audioLine && videoLine?.mid) throw new OfferError(`offer has no video codec we can send: ${needs('video')} (it accepts ${listCodecs(videoLine)})`);
    throw new OfferError(`offer accepts nothing we can send: ${problems.join('; ')}`);
  }
  return offer;
}

/**
 * The offered codecs for a refusal, each with what kept it out: `H264(packetization-mode=0)`,
 * `H265(tx-mode=MRST)`, `H265(profile-id=main)` (an fmtp we cannot read, as offered).
 */
function listCodecs(m: OfferMedia): string {
  const names = [
    ...new Set(
      m.codecs.map((c) => {
        const f = formatByEncoding(c.name);
        const r = f?.webrtc?.requires;
        const value = r && (c.fmtp[r.key] ?? r.absent);
        // A requirement the offer meets by default (H.265's tx-mode) is named only when unmet.
        if (r && (r.absent !== r.value || value!.toUpperCase() !== r.value.toUpperCase())) return `${c.name}(${r.key}=${value})`;
        if (f && READABLE[f.name]?.(c.fmtp) === false) return `${c.name}(${Object.entries(c.fmtp).map(([k, v]) => `${k}=${v}`).join(';')})`;
        return c.name;
      }),
    ),
  ];
  return names.length ? names.join(', ') : 'no codec';
}

/** The payload type to send a video track on, and the fmtp to answer it with (undefined: the offer's). */
export interface VideoAnswer {
  mid: string;
  codec: OfferCodec;
  fmtp?: Record<string, string>;
  /** For logs and /api/streams: the payload type and its profile, as answered. */
  description: string;
}

/**
 * What to send on the video m-line for this track, or undefined when the offer cannot take it:
 * not its codec, or (H.265) only payload types whose profile or tier cannot decode it.
 */
export function chooseVideo(offer: Offer, track: Track | undefined): VideoAnswer | undefined {
  if (!offer.video || !track) return undefined;
  const offered = offer.video.codecs.filter((v) => v.name === track.codec.name).map((v) => v.codec);
  if (offered.length === 0) return undefined;
  const mid = offer.video.media.mid!;
  const describe = (c: OfferCodec, profile: string | undefined) => `${track.codec.name} pt ${c.payloadType}${profile ? ` ${profile}` : ''}`;
  if (track.codec.name === 'H265') {
    const stream = streamPtl(track.params?.sps);
    let best: OfferCodec | undefined;
    let bestScore = -1;
    for (const c of offered) {
      const ptl = offeredPtl(c.fmtp)!;
      // Without an SPS yet nothing is known against: the first offered one.
      const s = stream ? h265Fit(ptl, stream) : 0;
      if (s !== undefined && s > bestScore) [best, bestScore] = [c, s];
    }
    if (!best) return undefined;
    const fmtp = h265AnswerFmtp(best.fmtp, stream);
    return { mid, codec: best, fmtp, description: describe(best, `profile-id=${fmtp['profile-id']} level-id=${fmtp['level-id']}`) };
  }
  const sps = track.params?.sps;
  let best = offered[0]!;
  if (sps && sps.length >= 4) {
    let bestScore = -1;
    for (const c of offered) {
      const s = profileScore(sps, c.fmtp['profile-level-id']);
      if (s > bestScore) {
        best = c;
        bestScore = s;
      }
    }
  }
  return { mid, codec: best, description: describe(best, best.fmtp['profile-level-id']) };
}

// RFC 6184 8.1: without profile-level-id the offer means Baseline, level 1.0.
const DEFAULT_PROFILE_LEVEL_ID = '42000a';

type Profile = 'constrained-baseline' | 'baseline' | 'main' | 'constrained-high' | 'high' | 'other';

/**
 * The profile a profile_idc + constraint-flags pair stands for, by the table WebRTC itself uses
 * (libwebrtc h264_profile_level_id.cc): the flags turn Baseline/Main/High into their constrained
 * forms, which is what browsers offer and what x264 at low presets produces.
 */
export function h264Profile(profileIdc: number, iop: number): Profile {
  const low4 = (iop & 0x0f) === 0;
  if (profileIdc === 0x42 && low4) return iop & 0x40 ? 'constrained-baseline' : 'baseline';
  if (profileIdc === 0x4d && low4) return iop & 0x80 ? 'constrained-baseline' : (iop & 0x20) === 0 ? 'main' : 'other';
  if (profileIdc === 0x58 && low4 && iop & 0x80) return iop & 0x40 ? 'constrained-baseline' : 'baseline';
  if (profileIdc === 0x64) return iop === 0 ? 'high' : iop === 0x0c ? 'constrained-high' : 'other';
  return 'other';
}

/** Profiles a decoder of the key profile also decodes (each profile decodes itself). */
const DECODES: Record<Profile, Profile[]> = {
  'constrained-baseline': [],
  baseline: ['constrained-baseline'],
  main: ['constrained-baseline'],
  'constrained-high': ['constrained-baseline', 'main'],
  high: ['constrained-baseline', 'main', 'constrained-high'],
  other: [],
};

/**
 * How well an offered profile-level-id fits the stream's SPS: the same profile (2), a profile
 * whose decoders take ours (1), else 0 (still sent: browsers decode more than they offer). The
 * level does not count: browsers offer level-asymmetry-allowed and take whatever level arrives.
 */
function profileScore(sps: Buffer, profileLevelId = DEFAULT_PROFILE_LEVEL_ID): number {
  if (!/^[0-9a-f]{6}$/i.test(profileLevelId)) return 0;
  const offered = h264Profile(parseInt(profileLevelId.slice(0, 2), 16), parseInt(profileLevelId.slice(2, 4), 16));
  const ours = h264Profile(sps[1]!, sps[2]!);
  if (offered === ours && ours !== 'other') return 2;
  return DECODES[offered].includes(ours) ? 1 : 0;
}

/**
 * The codec the viewer's microphone is to send in: on the line we also send audio on, the one
 * answered for that; else the camera's backchannel codec when offered (nothing to convert), else
 * the first of the offer's that camrelay decodes (Opus before G.711, as browsers list them).
 */
export function chooseMic(offer: Offer, camera: Pick<Codec, 'name' | 'clockRate'>, sending?: { mid: string; codec: OfferCodec }): { mid: string; codec: OfferCodec; name: CodecName } | undefined {
  const mic = offer.mic;
  if (!mic) return undefined;
  const mid = mic.media.mid!;
  if (sending && sending.mid === mid) {
    const same = mic.codecs.find((c) => c.codec.payloadType === sending.codec.payloadType);
    return same && { mid, codec: same.codec, name: same.name };
  }
  const pick = mic.codecs.find((c) => c.name === camera.name && c.codec.clockRate === camera.clockRate) ?? mic.codecs[0];
  return pick && { mid, codec: pick.codec, name: pick.name };
}

/** The stream's audio track to send, and how, in the offer's order of preference. */
export function chooseAudio(offer: Offer, tracks: readonly Track[]): { mid: string; codec: OfferCodec; track: Track } | undefined {
  if (!offer.audio) return undefined;
  for (const a of offer.audio.codecs) {
    const track = tracks.find((t) => t.kind === 'audio' && t.codec.name === a.name && t.codec.clockRate === a.codec.clockRate);
    if (track) return { mid: offer.audio.media.mid!, codec: a.codec, track };
  }
  return undefined;
}
