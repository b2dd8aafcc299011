// go2rtc's JSON for connections (pkg/core): one media as a string ("video, recvonly, H264"),
// codecs with ffprobe-like names ({codec_name:"h264",codec_type:"video"}). Clients such as
// python-go2rtc-client and dashboard cards read these fields.
import { codecFormat } from '../codecs/table.js';
import type { Codec, Kind, MediaRequest, Track } from '../core/media.js';
import { ALL_CODECS } from '../core/media.js';

export interface CodecJson {
  codec_name: string;
  codec_type: Kind;
  sample_rate?: number;
  channels?: number;
}

export function codecJson(kind: Kind, c: Codec): CodecJson {
  const j: CodecJson = { codec_name: codecFormat(c.name)?.ffprobeName ?? c.name.toLowerCase(), codec_type: kind };
  if (c.clockRate !== 0 && c.clockRate !== 90000) j.sample_rate = c.clockRate;
  if (c.channels && c.channels > 0) j.channels = c.channels;
  return j;
}

/** go2rtc's codec text: "H264" for video, "OPUS/48000/2", "PCMA/8000" for audio. */
function codecText(kind: Kind, c: Codec): string {
  if (kind === 'video') return c.name;
  return `${c.name}/${c.clockRate}${c.channels && c.channels > 1 ? `/${c.channels}` : ''}`;
}

/** A producer's media lines, one per track: "video, recvonly, H264". */
export function recvMedias(tracks: readonly Track[]): string[] {
  return tracks.map((t) => `${t.kind}, recvonly, ${codecText(t.kind, t.codec)}`);
}

/** A consumer's media lines from what it asked for: ANY when it takes every codec of a kind. */
export function sendMedias(req: MediaRequest, microphone = false): string[] {
  const out: string[] = [];
  for (const kind of ['video', 'audio'] as const) {
    const want = req[kind];
    if (!want) continue;
    const any = ALL_CODECS[kind].every((c) => want.includes(c));
    out.push(`${kind}, sendonly, ${any ? 'ANY' : want.join(', ')}`);
  }
  if (microphone) out.push('audio, recvonly, ANY');
  return out;
}
