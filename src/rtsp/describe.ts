// The SDP camrelay answers a DESCRIBE with (RFC 2326 C.1): one media section per track served,
// its control URL `trackID=<n>`, and the codec parameters a player needs before the first
// keyframe, as each codec's table entry writes them (src/codecs/*-format.ts).
import { codecFormat, type CodecFormat } from '../codecs/table.js';
import type { Track } from '../core/media.js';
import { writeSdp, type SdpMediaDescription } from './sdp.js';

/** One track as served: its payload type and control name. */
export interface ServedMedia {
  track: Track;
  payloadType: number;
  /** The a=control value, relative to the Content-Base. */
  control: string;
  sdp: SdpMediaDescription;
}

const FIRST_DYNAMIC_PT = 96;

function formatOf(t: Track): CodecFormat {
  const f = codecFormat(t.codec.name);
  if (!f) throw new Error(`no codec table entry for ${t.codec.name}`);
  return f;
}

/** The SDP media section for `track` served under payload type `pt`. */
export function mediaForTrack(track: Track, pt: number, control: string): SdpMediaDescription {
  const f = formatOf(track);
  const { clockRate, channels } = f.rtpmap(track);
  const d: SdpMediaDescription = { kind: track.kind, payloadType: pt, control, clockRate, codec: f.encoding };
  if (channels !== undefined) d.channels = channels;
  const fmtp = f.fmtp(track);
  if (fmtp !== undefined) d.fmtp = fmtp;
  return d;
}

/** RFC 3551 static payload types, used when the track fits them (as players expect). */
function staticPayloadType(t: Track): number | undefined {
  const f = formatOf(t);
  if (f.staticPayloadType === undefined || t.codec.clockRate !== f.clockRate || (t.codec.channels ?? 1) !== 1) return undefined;
  return f.staticPayloadType;
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
