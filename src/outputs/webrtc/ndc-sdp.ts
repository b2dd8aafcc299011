// SDP and ICE details the node-datachannel backend needs around libdatachannel: what the offer's
// m-lines carry (to answer their payload types as offered), the DTLS role, the shape of candidate
// lines, and go2rtc-style ICE server URLs in libdatachannel's form.
import type { IceServer as NdcIceServer } from 'node-datachannel';
import { formatByStaticPayloadType } from '../../codecs/table.js';
import type { WebRtcSettings } from './settings.js';

export interface OfferedCodec {
  payloadType: number;
  /** The a=rtpmap encoding as written, e.g. 'H264/90000', 'opus/48000/2'. */
  rtpmap: string;
  /** The a=fmtp parameters as written, when there are any. */
  fmtp?: string;
  /** The offer asks for generic NACK on it (`a=rtcp-fb:<pt> nack`, or `*`: RFC 4585 4.2). */
  nack?: true;
}

/** The offer's direction for an m-line, from the offerer's side (a=sendonly: it sends, we receive). */
export type OfferedDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface OfferedMedia {
  index: number;
  kind: string;
  /** 0 = the offerer rejected this m-line already. */
  port: number;
  mid?: string;
  /** The m-line's direction attribute, else the session's, else sendrecv (RFC 8866 6.7). */
  direction: OfferedDirection;
  codecs: OfferedCodec[];
}

/** The a=rtpmap an RFC 3551 static payload type stands for: an offer may list one without it. */
function staticRtpmap(pt: number): string | undefined {
  const f = formatByStaticPayloadType(pt);
  return f ? `${f.encoding}/${f.clockRate}` : undefined;
}

/** The offer's m-lines with their payload types in offer order (no validation: the session did it). */
export function scanOffer(sdp: string): OfferedMedia[] {
  const media: (Omit<OfferedMedia, 'direction'> & { dir?: OfferedDirection; pts: number[]; rtpmap: Map<number, string>; fmtp: Map<number, string>; nack: Set<number | '*'> })[] = [];
  let sessionDirection: OfferedDirection = 'sendrecv';
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    const m = /^m=(\S+) (\d+)(?:\/\d+)? \S+((?: \S+)*)$/.exec(line);
    if (m) {
      const pts = m[3]!.trim().split(' ').filter(Boolean).map(Number).filter((n) => Number.isInteger(n));
      media.push({ index: media.length, kind: m[1]!, port: Number(m[2]), codecs: [], pts, rtpmap: new Map(), fmtp: new Map(), nack: new Set() });
      continue;
    }
    const cur = media[media.length - 1];
    const dir = /^a=(sendrecv|sendonly|recvonly|inactive)$/.exec(line)?.[1] as OfferedDirection | undefined;
    if (dir) {
      if (cur) cur.dir = dir;
      else sessionDirection = dir;
      continue;
    }
    if (!cur) continue;
    let a: RegExpExecArray | null;
    if ((a = /^a=mid:(\S+)/.exec(line))) cur.mid = a[1]!;
    else if ((a = /^a=rtpmap:(\d+) (\S+)/.exec(line))) cur.rtpmap.set(Number(a[1]), a[2]!);
    else if ((a = /^a=fmtp:(\d+) (.+)$/.exec(line))) cur.fmtp.set(Number(a[1]), a[2]!.trim());
    else if ((a = /^a=rtcp-fb:(\d+|\*) nack$/.exec(line))) cur.nack.add(a[1] === '*' ? '*' : Number(a[1]));
  }
  return media.map(({ pts, rtpmap, fmtp, nack, dir, ...m }) => ({
    ...m,
    direction: dir ?? sessionDirection,
    codecs: pts.flatMap((pt) => {
      const map = rtpmap.get(pt) ?? staticRtpmap(pt);
      if (!map) return [];
      const f = fmtp.get(pt);
      return [{ payloadType: pt, rtpmap: map, ...(f ? { fmtp: f } : {}), ...(nack.has(pt) || nack.has('*') ? { nack: true as const } : {}) }];
    }),
  }));
}

/**
 * The offer as libdatachannel is given it: an offer that lets us choose the DTLS role
 * (a=setup:actpass) says active instead, so that we answer passive and the viewer starts the
 * handshake. Answering active (libdatachannel's choice), our ClientHello goes out as soon as our
 * side of ICE works, which can be before the viewer has our answer: werift drops it, and the
 * retransmission comes a second later, a second added to every viewer's first picture. RFC 5763
 * allows either answer to actpass.
 */
export function preferPassiveDtls(offer: string): string {
  return offer.replace(/^a=setup:actpass(\r?)$/gm, 'a=setup:active$1');
}

/**
 * libdatachannel writes 'UDP' in candidates; browsers, werift and go2rtc write 'udp'. The field
 * is case-insensitive (RFC 8839), but clients that compare it literally exist, so ours match
 * the browsers'. Takes a candidate line with or without 'a='.
 */
export function normalizeCandidate(line: string): string {
  return line.replace(/^((?:a=)?candidate:\S+ \d+ )UDP /, '$1udp ');
}

/** Every candidate line of an SDP normalized (see normalizeCandidate). */
export function normalizeCandidates(sdp: string): string {
  return sdp.replace(/^a=candidate:\S+ \d+ UDP .*$/gm, (l) => normalizeCandidate(l));
}

/**
 * withExtraCandidates/extraCandidates rank an extra address just below a host candidate of
 * werift's priority. libjuice gives its host candidates a lower local preference, which would put
 * the extra addresses above the real ones, and a viewer on the LAN would prefer a hairpin through
 * the router. Caps each extra candidate ('candidate:x<i>') below the host candidate before it.
 */
export function capExtraPriorities(lines: string): string {
  let host = Infinity;
  return lines.replace(/^((?:a=)?candidate:)(\S+) (\d+) (\S+) (\d+) (.*)$/gm, (line, pre: string, foundation: string, comp: string, proto: string, prio: string, rest: string) => {
    const x = /^x(\d+)$/.exec(foundation);
    if (!x) {
      host = Number(prio);
      return line;
    }
    const capped = Math.min(Number(prio), host - 1 - Number(x[1]));
    return `${pre}${foundation} ${comp} ${proto} ${capped >>> 0} ${rest}`;
  });
}

/** The SDP without candidates, for an answer that trickles them as events instead. */
export function withoutCandidates(sdp: string): string {
  return sdp.replace(/^a=(?:candidate:.*|end-of-candidates)\r?\n/gm, '');
}

/**
 * go2rtc's ice_servers in libdatachannel's form. URLs it cannot express are returned in
 * `skipped` for the caller to report; credentials stay out of the strings (objects instead), so
 * a password with '@' or ':' needs no escaping.
 */
export function toNdcIceServers(servers: WebRtcSettings['iceServers']): { servers: NdcIceServer[]; skipped: string[] } {
  const out: NdcIceServer[] = [];
  const skipped: string[] = [];
  for (const s of servers) {
    for (const url of s.urls) {
      const m = /^(stuns?|turns?):(\[[^\]]+\]|[^:?[\]]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i.exec(url.trim());
      if (!m) {
        skipped.push(url);
        continue;
      }
      const scheme = m[1]!.toLowerCase();
      const hostname = m[2]!.replace(/^\[(.*)\]$/, '$1');
      const tls = scheme === 'stuns' || scheme === 'turns';
      const port = m[3] ? Number(m[3]) : tls ? 5349 : 3478;
      if (scheme.startsWith('stun')) {
        if (tls) {
          skipped.push(url); // libdatachannel has no STUN over TLS
          continue;
        }
        out.push({ hostname, port });
        continue;
      }
      const relayType = tls ? 'TurnTls' : m[4]?.toLowerCase() === 'tcp' ? 'TurnTcp' : 'TurnUdp';
      out.push({ hostname, port, username: s.username ?? '', password: s.credential ?? '', relayType });
    }
  }
  return { servers: out, skipped };
}

/** 'ip:port', with brackets for IPv6. */
export function formatAddress(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
