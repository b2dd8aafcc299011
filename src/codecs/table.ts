// The codec table: one CodecFormat per codec camrelay carries. SDP for RTSP and WebRTC, the
// play-URL filters, the RTSP receiver and the outputs look codecs up here. A new codec is a
// name in core/media.ts's ALL_CODECS, an entry file beside these and its rtp/ (de)packetizer.
import { ALL_CODECS, type CodecName, type Kind } from '../core/media.js';
import { AAC_FORMAT } from './aac-format.js';
import type { CodecFormat } from './format.js';
import { PCMA_FORMAT, PCMU_FORMAT } from './g711-format.js';
import { H264_FORMAT } from './h264-format.js';
import { H265_FORMAT } from './h265-format.js';
import { OPUS_FORMAT } from './opus-format.js';

export type { CodecFormat } from './format.js';

/** By camrelay's name; a Record, so that a name without an entry does not compile. */
export const CODECS: Readonly<Record<CodecName, CodecFormat>> = {
  H264: H264_FORMAT,
  H265: H265_FORMAT,
  OPUS: OPUS_FORMAT,
  AAC: AAC_FORMAT,
  PCMA: PCMA_FORMAT,
  PCMU: PCMU_FORMAT,
};

/** Every entry, video first, each kind in ALL_CODECS's order of preference. */
export const CODEC_LIST: readonly CodecFormat[] = [...ALL_CODECS.video, ...ALL_CODECS.audio].map((n) => CODECS[n]);

const byEncoding = new Map(CODEC_LIST.map((f) => [f.encoding.toUpperCase(), f]));
const byStaticType = new Map(CODEC_LIST.flatMap((f) => (f.staticPayloadType === undefined ? [] : [[f.staticPayloadType, f] as const])));
const byQueryName = new Map(CODEC_LIST.flatMap((f) => [f.name, f.encoding.toUpperCase(), ...f.aliases].map((n) => [n, f] as const)));

/** The entry for a name camrelay uses; undefined for anything else (e.g. from JSON). */
export function codecFormat(name: string): CodecFormat | undefined {
  return Object.hasOwn(CODECS, name) ? CODECS[name as CodecName] : undefined;
}

/** The entry an a=rtpmap encoding name stands for, in any case. */
export function formatByEncoding(encoding: string | undefined): CodecFormat | undefined {
  return encoding === undefined ? undefined : byEncoding.get(encoding.toUpperCase());
}

/** The entry an RFC 3551 static payload type stands for, among the codecs carried. */
export function formatByStaticPayloadType(pt: number): CodecFormat | undefined {
  return byStaticType.get(pt);
}

/** The codec a go2rtc URL query names (`h264`, `hevc`, `mpeg4-generic`, …), in any case. */
export function formatByQueryName(name: string): CodecFormat | undefined {
  return byQueryName.get(name.toUpperCase());
}

/** The codecs of `kind` WebRTC viewers can get, in order of preference. */
export function webrtcFormats(kind: Kind): CodecFormat[] {
  return CODEC_LIST.filter((f) => f.kind === kind && f.webrtc);
}
