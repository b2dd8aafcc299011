// The SDP camrelay answers a DESCRIBE with (RFC 2326 C.1): one media section per track served,
// its control URL `trackID=<n>`, and the codec parameters a player needs before the first
// keyframe (RFC 6184 8.1 for H.264, RFC 7798 7.1 for H.265, RFC 3640 4.1 for AAC, RFC 7587 for Opus).
import type { Track } from '../core/media.js';
import { profileLevelId } from '../codecs/h264.js';
import { AAC_HBR_FMTP, aacLcConfig } from '../rtp/aac-packetizer.js';
import { parseFmtp, writeSdp, type SdpMediaDescription } from './sdp.js';

/** One track as served: its payload type and control name. */
export interface ServedMedia {
  track: Track;
  payloadType: number;
  /** The a=control value, relative to the Content-Base. */
  control: string;
  sdp: SdpMediaDescription;
}

const FIRST_DYNAMIC_PT = 96;

/** The codec names a served track may have: those camrelay can packetize. */
export const SERVABLE = new Set(['H264', 'H265', 'AAC', 'OPUS', 'PCMA', 'PCMU']);

function fmtpFrom(pairs: [string, string | undefined][]): string | undefined {
  const text = pairs.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${v}`).join(';');
  return text || undefined;
}

function h264Fmtp(t: Track): string {
  const from = parseFmtp(t.codec.fmtp ?? '');
  const { sps, pps } = t.params ?? {};
  const sprop = sps && pps ? `${sps.toString('base64')},${pps.toString('base64')}` : from['sprop-parameter-sets'];
  // Our packetizer makes FU-A, which needs mode 1 whatever the source announced.
  return fmtpFrom([
    ['packetization-mode', '1'],
    ['profile-level-id', (sps && profileLevelId(sps)) ?? from['profile-level-id']],
    ['sprop-parameter-sets', sprop],
  ])!;
}

function h265Fmtp(t: Track): string | undefined {
  const from = parseFmtp(t.codec.fmtp ?? '');
  const p = t.params ?? {};
  return fmtpFrom([
    ['sprop-vps', p.vps?.toString('base64') ?? from['sprop-vps']],
    ['sprop-sps', p.sps?.toString('base64') ?? from['sprop-sps']],
    ['sprop-pps', p.pps?.toString('base64') ?? from['sprop-pps']],
  ]);
}

function aacFmtp(t: Track): string {
  const from = parseFmtp(t.codec.fmtp ?? '');
  const config = from['config'] || aacLcConfig(t.codec.clockRate, t.codec.channels ?? 1);
  return AAC_HBR_FMTP + (config ? `;config=${config}` : '');
}

/** The SDP media section for `track` served under payload type `pt`. */
export function mediaForTrack(track: Track, pt: number, control: string): SdpMediaDescription {
  const c = track.codec;
  const base = { kind: track.kind, payloadType: pt, control, clockRate: c.clockRate };
  switch (c.name) {
    case 'H264':
      return { ...base, codec: 'H264', fmtp: h264Fmtp(track) };
    case 'H265':
      return { ...base, codec: 'H265', fmtp: h265Fmtp(track) };
    case 'AAC':
      return { ...base, codec: 'MPEG4-GENERIC', channels: c.channels ?? 1, fmtp: aacFmtp(track) };
    case 'OPUS':
      // RFC 7587 6.1: always opus/48000/2.
      return { ...base, codec: 'opus', clockRate: 48000, channels: 2, fmtp: c.fmtp };
    case 'PCMA':
    case 'PCMU':
      return { ...base, codec: c.name, channels: c.channels ?? 1 };
  }
}

/** RFC 3551 static payload types, used when the G.711 track fits them (as players expect). */
function staticPayloadType(t: Track): number | undefined {
  if (t.codec.clockRate !== 8000 || (t.codec.channels ?? 1) !== 1) return undefined;
  return t.codec.name === 'PCMU' ? 0 : t.codec.name === 'PCMA' ? 8 : undefined;
}

/** Payload types and control names for the tracks served, in order, and the SDP describing them. */
export function describeTracks(tracks: readonly Track[], sessionName = 'camrelay'): { media: ServedMedia[]; sdp: string } {
  let dynamic = FIRST_DYNAMIC_PT;
  const media = tracks.map((track, i): ServedMedia => {
    const payloadType = staticPayloadType(track) ?? dynamic++;
    const control = `trackID=${i}`;
    return { track, payloadType, control, sdp: mediaForTrack(track, payloadType, control) };
  });
  // A name with CR or LF would break the SDP: keep it printable.
  const name = sessionName.replace(/[\r\n]/g, ' ') || 'camrelay';
  return { media, sdp: writeSdp({ name, media: media.map((m) => m.sdp) }) };
}
