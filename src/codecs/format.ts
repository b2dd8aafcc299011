// What camrelay knows of one codec, in one entry (after gortsplib's pkg/format): how SDP names
// it, how its fmtp is read and written, how its parameter sets travel, and how it goes in and
// out of RTP. The entries are in table.ts; everything codec-specific elsewhere reads them.
import type { CodecName, Frame, Kind, Track } from '../core/media.js';
import type { RtpPacket } from '../rtp/packet.js';
import type { RtpPayload } from '../rtp/payload.js';
import type { SampleEntry } from '../formats/mp4/sample-entries.js';

/** What an SDP media section says of one payload type (rtsp/sdp.ts's SdpMedia has this shape). */
export interface SdpFormat {
  kind: string;
  /** Encoding name upper-cased, from a=rtpmap or the static payload type. */
  codec?: string;
  clockRate?: number;
  channels?: number;
  /** The a=fmtp text as written. */
  fmtp?: string;
  /** The a=fmtp parameters, keys lower-cased. */
  fmtpParams: Record<string, string>;
}

/** An access unit or audio frame out of a depacketizer, its timestamp in the codec clock. */
export interface MediaUnit {
  timestamp: number;
  keyframe: boolean;
  data: Buffer[];
}

/** One track's RTP in, MediaUnits out. */
export interface Depacketizer {
  /** Throws DepacketizeError for data it cannot use (after delivering what it could). */
  push(pkt: RtpPacket): void;
}

export type ParameterSets = NonNullable<Track['params']>;

/** A video codec's parameter sets: a decoder cannot start at a keyframe without them. */
export interface ParameterSetHandling {
  /** The sets an SDP announces in its fmtp (sprop-…). */
  fromFmtp(fmtp: Record<string, string>): ParameterSets;
  /** Records in-band sets into `known` and returns a keyframe with the sets in front. */
  update(nals: Buffer[], known: ParameterSets): Buffer[];
  /** Whether a decoder still lacks a set with only `known`. */
  missing(known: ParameterSets): boolean;
}

/** How a codec is offered to and sent to WebRTC viewers. */
export interface WebRtcUse {
  /** The only clock rate sent. */
  clockRate: number;
  /** An fmtp parameter an offered format must have (with its value when the offer leaves it out). */
  requires?: { key: string; value: string; absent: string };
}

/** How a codec goes into fragmented MP4 (MSE over /api/ws, stream.mp4). */
export interface Mp4Use {
  /** The token of go2rtc's MSE codec list that stands for it, matched exactly as go2rtc does (mime.go). */
  mseToken: string;
  /** Its part of the MSE type `video/mp4; codecs="…"`, as go2rtc writes it. */
  codecString(t: Track): string;
  /** Its sample entry; undefined while what it needs (the parameter sets) is not known. */
  sampleEntry(t: Track): SampleEntry | undefined;
  /** A frame's bytes as one MP4 sample (NAL units length-prefixed, audio frames as they are). */
  sample(f: Frame): Buffer[];
  /** Every sample's duration when the codec fixes it (AAC: 1024 samples), in the track's clock. */
  fixedDuration?: number;
}

export interface CodecFormat {
  name: CodecName;
  kind: Kind;
  /** The encoding name written in a=rtpmap; read case-insensitively. */
  encoding: string;
  /** More names go2rtc's URL query takes for it (`?video=hevc`), upper-case. */
  aliases: readonly string[];
  /** ffprobe's codec_name for it, as go2rtc's JSON writes codecs (`hevc`, `pcm_alaw`). */
  ffprobeName: string;
  /** The clock rate a section without one is taken to have; absent, unsupported() refuses such a section. */
  clockRate?: number;
  /** Channels a=rtpmap always names, whatever the stream has (Opus: 2, RFC 7587 6.1). */
  rtpmapChannels?: number;
  /** RFC 3551 payload type, for `clockRate` and one channel. */
  staticPayloadType?: number;
  /** Absent: not sent over WebRTC. */
  webrtc?: WebRtcUse;
  /** Why a section of this codec (of the right kind) cannot become a track, or undefined. */
  unsupported?(f: SdpFormat): string | undefined;
  /** The track a section of this codec describes, its fmtp read. */
  track(f: SdpFormat): Track;
  /** Clock rate and channels of the a=rtpmap line that serves `t`. */
  rtpmap(t: Track): { clockRate: number; channels?: number };
  /** The a=fmtp text that serves `t` (what our packetizer makes, what a player needs first). */
  fmtp(t: Track): string | undefined;
  parameterSets?: ParameterSetHandling;
  /** Absent: not written into MP4. */
  mp4?: Mp4Use;
  /** A frame's RTP payloads, made once and shared between viewers. */
  packetize(frame: Frame): readonly RtpPayload[];
  /** A depacketizer for `track`'s RTP; throws for a track that unsupported() refuses. */
  depacketizer(track: Track, onUnit: (u: MediaUnit) => void): Depacketizer;
}
