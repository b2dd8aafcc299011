// Tracks and frames: the currency between sources, the stream and outputs.

export type Kind = 'video' | 'audio';
export type CodecName = 'H264' | 'H265' | 'OPUS' | 'PCMA' | 'PCMU' | 'AAC';

/** Every codec camrelay carries, per kind, in order of preference; each has its entry in src/codecs/table.ts. */
export const ALL_CODECS: Record<Kind, CodecName[]> = {
  video: ['H264', 'H265'],
  audio: ['OPUS', 'AAC', 'PCMA', 'PCMU'],
};

export interface Codec {
  name: CodecName;
  /** RTP clock rate, e.g. 90000 for video, 48000 for Opus, 8000 for G.711. */
  clockRate: number;
  channels?: number;
  /** The fmtp line of the SDP the track came from, if any (kept for RTSP re-serving). */
  fmtp?: string;
}

export interface Track {
  kind: Kind;
  codec: Codec;
  /** H.264/H.265 parameter sets, kept current by the source so that late joiners can decode. */
  params?: { vps?: Buffer; sps?: Buffer; pps?: Buffer };
}

/**
 * One access unit. For H.264/H.265 `data` holds the NAL units without start codes; for audio it
 * holds one payload (one Opus packet, a run of G.711 samples, one AAC access unit).
 */
export interface Frame {
  track: Track;
  /** In the codec's clock (Codec.clockRate), monotonic per track, not wrapped at 2^32. */
  timestamp: number;
  keyframe: boolean;
  data: Buffer[];
}

/** What a consumer accepts, per kind, in order of preference. An absent kind is not wanted. */
export interface MediaRequest {
  video?: CodecName[];
  audio?: CodecName[];
}

export function describeTrack(t: Track): string {
  const ch = t.codec.channels && t.codec.channels > 1 ? `/${t.codec.channels}` : '';
  return `${t.kind}:${t.codec.name}/${t.codec.clockRate}${ch}`;
}
