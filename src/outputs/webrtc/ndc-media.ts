// The m-line descriptions camrelay answers with on node-datachannel: one codec each, sending,
// receiving (a viewer's microphone), both, or inactive, with the fmtp camrelay chose or the offer's. Every video codec goes through
// addVideoCodec(pt, name, fmtp), H.265 included: addH265Codec(pt) takes no fmtp and would answer
// libdatachannel's own instead of the profile, tier and level chosen for the stream (h265-fmtp.ts).
// No libdatachannel packetizer is used (ndc-send-track.ts), so any codec's RTP goes out as made.
import type { Audio, Video } from 'node-datachannel';
import type { OfferedMedia } from './ndc-sdp.js';
import type { NdcLib } from './ndc-native.js';

/** Payload types that are not a codec of their own (repair, redundancy). */
const NOT_MEDIA = new Set(['rtx', 'red', 'ulpfec', 'flexfec-03']);

/** The first codec of an m-line that is a codec of its own: what an inactive answer names. */
export function firstMediaCodec(m: OfferedMedia): OfferedMedia['codecs'][number] | undefined {
  return m.codecs.find((c) => !NOT_MEDIA.has(c.rtpmap.split('/')[0]!.toLowerCase()));
}

/** The description of one answered m-line: one codec, in the direction given. */
export function mediaDescription(lib: NdcLib, kind: string, mid: string, dir: 'SendOnly' | 'RecvOnly' | 'SendRecv' | 'Inactive', pt: number, rtpmap: string, fmtp: string | undefined): Video | Audio {
  if (kind === 'video') {
    const v = new lib.Video(mid, dir);
    const name = rtpmap.split('/')[0]!;
    if (fmtp) v.addVideoCodec(pt, name, fmtp);
    else v.addVideoCodec(pt, name);
    return v;
  }
  const a = new lib.Audio(mid, dir);
  if (fmtp) a.addAudioCodec(pt, rtpmap, fmtp);
  else a.addAudioCodec(pt, rtpmap);
  return a;
}

/** fmtp parameters as one a=fmtp value; undefined when there are none. */
export function fmtpLine(fmtp: Record<string, string>): string | undefined {
  const parts = Object.entries(fmtp).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(';') : undefined;
}
