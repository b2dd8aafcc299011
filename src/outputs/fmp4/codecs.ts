// Which codecs an fMP4 viewer takes, and the MSE type that names what it gets, as go2rtc reads
// and writes them (pkg/mp4/helpers.go ParseCodecs, pkg/mp4/mime.go, internal/streams/add_consumer.go).
import { CODEC_LIST } from '../../codecs/table.js';
import type { CodecName, MediaRequest, Track } from '../../core/media.js';

/** What go2rtc's MP4 consumer takes when the client names nothing it knows: H.264/H.265 and AAC. */
export const DEFAULT_FMP4_REQUEST: MediaRequest = { video: ['H264', 'H265'], audio: ['AAC'] };

/** The codecs an MP4 can carry, per kind (the table entries with an `mp4` field). */
export const MP4_CODECS: MediaRequest = {
  video: CODEC_LIST.filter((f) => f.kind === 'video' && f.mp4).map((f) => f.name),
  audio: CODEC_LIST.filter((f) => f.kind === 'audio' && f.mp4).map((f) => f.name),
};

/**
 * The `mse` message's value: comma-separated codec strings, each matched exactly against the one
 * token go2rtc knows per codec (so `avc1.640029` stands for any H.264). Nothing known = defaults.
 */
export function parseMseCodecs(value: string): MediaRequest {
  const video: CodecName[] = [];
  const audio: CodecName[] = [];
  for (const token of value.split(',')) {
    const f = CODEC_LIST.find((c) => c.mp4?.mseToken === token);
    if (!f) continue;
    const list = f.kind === 'video' ? video : audio;
    if (!list.includes(f.name)) list.push(f.name);
  }
  if (video.length === 0 && audio.length === 0) return DEFAULT_FMP4_REQUEST;
  return { ...(video.length > 0 && { video }), ...(audio.length > 0 && { audio }) };
}

/** `video/mp4; codecs="avc1.640029,mp4a.40.2"`: go2rtc's answer, without spaces, in track order. */
export function mimeType(tracks: readonly Track[]): string {
  const codecs = tracks.map((t) => CODEC_LIST.find((f) => f.name === t.codec.name)?.mp4?.codecString(t)).filter((c): c is string => c !== undefined);
  return `video/mp4; codecs="${codecs.join(',')}"`;
}

/** A request as a stable key: viewers asking for the same codecs share one muxer. */
export function requestKey(r: MediaRequest): string {
  return `${r.video?.join(',') ?? '-'}|${r.audio?.join(',') ?? '-'}`;
}

/** go2rtc's wording when no track matched: `codecs not matched: video:H264, audio:PCMA => video:H265`. */
export function notMatchedMessage(have: readonly Track[], want: MediaRequest): string {
  const prod = have.map((t) => `${t.kind}:${t.codec.name}`).join(', ');
  const cons = (['video', 'audio'] as const).filter((k) => want[k]?.length).map((k) => `${k}:${want[k]!.join(',')}`).join(', ');
  return `streams: codecs not matched: ${prod} => ${cons}`;
}

/**
 * stream.mp4's codecs from its query, as go2rtc's mp4.ParseQuery: `mp4` (empty, or `flac`) =
 * H.264/H.265 + AAC; `mp4=<anything else>` adds Opus; else `video=`/`audio=` filters (go2rtc's
 * names), kept to what MP4 carries; nothing = the defaults. (go2rtc's FLAC and MP3 are not carried.)
 */
export function parseMp4Query(params: URLSearchParams, mediaQuery: (q: string) => MediaRequest): MediaRequest {
  if (params.has('mp4')) {
    const v = params.get('mp4') ?? '';
    return v === '' || v === 'flac' ? DEFAULT_FMP4_REQUEST : { video: ['H264', 'H265'], audio: ['AAC', 'OPUS'] };
  }
  if (!params.has('video') && !params.has('audio')) return DEFAULT_FMP4_REQUEST;
  const asked = mediaQuery(params.toString());
  const keep = (k: 'video' | 'audio') => asked[k]?.filter((c) => MP4_CODECS[k]?.includes(c));
  const video = keep('video');
  const audio = keep('audio');
  return { ...(video && { video }), ...(audio && { audio }) };
}
