import { parseFmtp } from '../codecs/fmtp.js';
import { parseSpropParameterSets } from '../codecs/h264.js';
import { formatByEncoding, formatByStaticPayloadType } from '../codecs/table.js';
import { SdpError } from './errors.js';

// SDP (RFC 4566) as far as RTSP needs it: media sections with their first format's codec, the
// control URL (RFC 2326 C.1.1) and fmtp parameters. Unknown lines are kept as attributes or skipped.
// Lenient in what cameras send (RFC 1122's robustness rule): a DESCRIBE answer without the
// v=/o=/s=/t= lines, or with a media section whose format list is not RTP payload types (a vendor's
// `m=application/… 0 RTP/AVP smart/0/25000`), still parses; such a section has no payload types and
// is skipped by whoever picks tracks. writeSdp stays strict.

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface SdpAttribute {
  name: string;
  value?: string;
}

export interface SdpMedia {
  /** 'video', 'audio', 'application', ... as written. */
  kind: string;
  port: number;
  protocol: string;
  /** The m= line's formats as written (payload type numbers for RTP, anything for others). */
  formats: string[];
  /**
   * The formats that are RTP payload types (0-127); the section describes `payloadType`, the first
   * of them unless forPayloadType() picked another. Empty for a section with no usable format.
   */
  payloadTypes: number[];
  /** -1 when payloadTypes is empty. */
  payloadType: number;
  /** Encoding name upper-cased ('H264', 'OPUS', 'PCMA'), from a=rtpmap or the static table. */
  codec?: string;
  clockRate?: number;
  channels?: number;
  /** The parameter text of the a=fmtp line for payloadType. */
  fmtp?: string;
  /** fmtp parameters, keys lower-cased. */
  fmtpParams: Record<string, string>;
  control?: string;
  direction?: Direction;
  /** H.264 sprop-parameter-sets decoded, when present. */
  sprop?: Buffer[];
  attributes: SdpAttribute[];
}

export interface SdpSession {
  origin?: string;
  name?: string;
  connection?: string;
  control?: string;
  attributes: SdpAttribute[];
  media: SdpMedia[];
}

/**
 * RFC 3551 table 4 and 5: static payload types a sender may use without a=rtpmap. Those of codecs
 * camrelay carries come from the codec table; the others are named so a refusal can say what.
 */
const OTHER_STATIC_PAYLOAD_TYPES: Record<number, { codec: string; clockRate: number; channels?: number }> = {
  3: { codec: 'GSM', clockRate: 8000, channels: 1 },
  4: { codec: 'G723', clockRate: 8000, channels: 1 },
  9: { codec: 'G722', clockRate: 8000, channels: 1 },
  10: { codec: 'L16', clockRate: 44100, channels: 2 },
  11: { codec: 'L16', clockRate: 44100, channels: 1 },
  14: { codec: 'MPA', clockRate: 90000 },
  26: { codec: 'JPEG', clockRate: 90000 },
  32: { codec: 'MPV', clockRate: 90000 },
  33: { codec: 'MP2T', clockRate: 90000 },
  34: { codec: 'H263', clockRate: 90000 },
};

function staticPayloadType(pt: number): { codec: string; clockRate: number; channels?: number } | undefined {
  const f = formatByStaticPayloadType(pt);
  // A static payload type is one channel at the codec's clock rate (RFC 3551 6).
  if (f) return { codec: f.encoding.toUpperCase(), clockRate: f.clockRate!, channels: 1 };
  return Object.hasOwn(OTHER_STATIC_PAYLOAD_TYPES, pt) ? OTHER_STATIC_PAYLOAD_TYPES[pt] : undefined;
}

const DIRECTIONS = new Set<string>(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

interface RawMedia {
  kind: string;
  port: number;
  protocol: string;
  formats: string[];
  payloadTypes: number[];
  attributes: SdpAttribute[];
}

export function parseSdp(text: string): SdpSession {
  const session: SdpSession = { attributes: [], media: [] };
  const raw: RawMedia[] = [];
  let current: RawMedia | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trim();
    if (line === '') continue;
    if (line.length < 2 || line[1] !== '=') throw new SdpError(`not an SDP line: ${JSON.stringify(line.slice(0, 80))}`);
    const type = line[0];
    const value = line.slice(2);
    switch (type) {
      case 'v':
        if (value !== '0') throw new SdpError(`unsupported SDP version ${value}`);
        break;
      case 'o':
        if (!current) session.origin = value;
        break;
      case 's':
        if (!current) session.name = value;
        break;
      case 'c':
        if (!current) session.connection = value;
        break;
      case 'm':
        current = parseMediaLine(value);
        raw.push(current);
        break;
      case 'a':
        (current ? current.attributes : session.attributes).push(parseAttribute(value));
        break;
      default:
        break;
    }
  }
  // Without v= (some cameras leave out every session line) a text must at least describe media.
  if (raw.length === 0 && !/^\s*v=/.test(text)) throw new SdpError('neither v=0 nor any m= line');
  session.control = session.attributes.find((a) => a.name === 'control')?.value;
  session.media = raw.map((r) => describeMedia(r, r.payloadTypes[0] ?? -1));
  return session;
}

function parseMediaLine(value: string): RawMedia {
  // m=<media> <port>[/<count>] <proto> <fmt> ...
  const parts = value.split(/\s+/);
  const [kind, portText, protocol, ...formats] = parts;
  const port = Number((portText ?? '').split('/')[0]);
  if (!kind || !protocol || !Number.isInteger(port) || port < 0 || port > 65535 || formats.length === 0) {
    throw new SdpError(`bad m= line: ${JSON.stringify(value.slice(0, 80))}`);
  }
  // A format that is not a payload type makes no track, and is no reason to refuse the others.
  const payloadTypes = /RTP\//.test(protocol) ? formats.filter((f) => /^\d{1,3}$/.test(f)).map(Number).filter((pt) => pt <= 127) : [];
  return { kind, port, protocol, formats, payloadTypes, attributes: [] };
}

function parseAttribute(value: string): SdpAttribute {
  const colon = value.indexOf(':');
  return colon < 0 ? { name: value } : { name: value.slice(0, colon), value: value.slice(colon + 1) };
}

/** a=rtpmap:<pt> <name>/<rate>[/<channels>] and a=fmtp:<pt> <params>, for one payload type. */
function attributeFor(attrs: SdpAttribute[], name: string, pt: number): string | undefined {
  for (const a of attrs) {
    if (a.name !== name || a.value === undefined) continue;
    const m = /^(\d+)\s+(.*)$/.exec(a.value.trim());
    if (m && Number(m[1]) === pt) return m[2]!.trim();
  }
  return undefined;
}

export { parseFmtp };

/**
 * The same media section describing another of its payload types (one m= line may list several
 * codecs, e.g. MPEG-4 part 2 and H.264 as 96 and 97). A type the line does not list gives `m`.
 */
export function forPayloadType(m: SdpMedia, pt: number): SdpMedia {
  if (pt === m.payloadType || !m.payloadTypes.includes(pt)) return m;
  return describeMedia(m, pt);
}

function describeMedia(r: RawMedia, payloadType: number): SdpMedia {
  const m: SdpMedia = {
    kind: r.kind,
    port: r.port,
    protocol: r.protocol,
    formats: r.formats,
    payloadTypes: r.payloadTypes,
    payloadType,
    fmtpParams: {},
    attributes: r.attributes,
  };
  const rtpmap = attributeFor(r.attributes, 'rtpmap', payloadType);
  if (rtpmap) {
    const [name, rate, channels] = rtpmap.split('/');
    m.codec = name?.trim().toUpperCase() || undefined;
    const clockRate = Number(rate);
    if (Number.isInteger(clockRate) && clockRate > 0) m.clockRate = clockRate;
    const ch = Number(channels);
    if (channels !== undefined && Number.isInteger(ch) && ch > 0) m.channels = ch;
  } else {
    const s = payloadType >= 0 ? staticPayloadType(payloadType) : undefined;
    if (s) {
      m.codec = s.codec;
      m.clockRate = s.clockRate;
      if (s.channels !== undefined) m.channels = s.channels;
    }
  }
  const fmtp = attributeFor(r.attributes, 'fmtp', payloadType);
  if (fmtp !== undefined) {
    m.fmtp = fmtp;
    m.fmtpParams = parseFmtp(fmtp);
  }
  const sprop = m.fmtpParams['sprop-parameter-sets'];
  if (m.codec === 'H264' && sprop) m.sprop = parseSpropParameterSets(sprop);
  m.control = r.attributes.find((a) => a.name === 'control')?.value?.trim();
  const dir = r.attributes.find((a) => DIRECTIONS.has(a.name));
  if (dir) m.direction = dir.name as Direction;
  return m;
}

/**
 * The absolute URL of a media control attribute (RFC 2326 C.1.1): '*' or absent means the base
 * itself, an absolute rtsp URL stands alone, anything else is relative to the base.
 */
export function resolveControl(base: string, control: string | undefined): string {
  if (!control || control === '*') return base;
  if (/^rtsps?:\/\//i.test(control)) return control;
  return base.replace(/\/+$/, '') + '/' + control.replace(/^\/+/, '');
}

export interface SdpMediaDescription {
  kind: string;
  payloadType: number;
  codec: string;
  clockRate: number;
  channels?: number;
  fmtp?: string;
  control?: string;
  direction?: Direction;
  /** Bandwidth in kbit/s (b=AS). */
  bandwidth?: number;
}

export interface SdpDescription {
  /** Default '- 0 0 IN IP4 127.0.0.1'. */
  origin?: string;
  name?: string;
  connection?: string;
  control?: string;
  media: SdpMediaDescription[];
}

/** Writes an SDP for an RTSP DESCRIBE answer or ANNOUNCE body. */
export function writeSdp(d: SdpDescription): string {
  const lines = [
    'v=0',
    `o=${d.origin ?? '- 0 0 IN IP4 127.0.0.1'}`,
    `s=${d.name ?? 'camrelay'}`,
    `c=${d.connection ?? 'IN IP4 0.0.0.0'}`,
    't=0 0',
  ];
  if (d.control) lines.push(`a=control:${d.control}`);
  for (const m of d.media) {
    lines.push(`m=${m.kind} 0 RTP/AVP ${m.payloadType}`);
    if (m.bandwidth) lines.push(`b=AS:${m.bandwidth}`);
    const channels = m.channels && m.channels > 1 ? m.channels : formatByEncoding(m.codec)?.rtpmapChannels;
    const ch = channels ? `/${channels}` : '';
    lines.push(`a=rtpmap:${m.payloadType} ${m.codec}/${m.clockRate}${ch}`);
    if (m.fmtp) lines.push(`a=fmtp:${m.payloadType} ${m.fmtp}`);
    if (m.control) lines.push(`a=control:${m.control}`);
    if (m.direction) lines.push(`a=${m.direction}`);
  }
  return lines.join('\r\n') + '\r\n';
}
