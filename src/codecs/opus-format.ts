// Opus over RTP (RFC 7587): one packet per frame, always announced as opus/48000/2 (6.1) whatever
// the channel count and the rate inside.
import { AudioDepacketizer } from '../rtp/audio-depacketizer.js';
import { packetizeAudioFrame } from '../rtp/audio-packetizer.js';
import type { CodecFormat, Depacketizer, MediaUnit } from './format.js';
import { OPUS_MP4 } from '../formats/mp4/codec-use.js';

/** Opus and G.711: every RTP payload is one frame, each a keyframe. */
export function onePacketPerFrame(onUnit: (u: MediaUnit) => void): Depacketizer {
  return new AudioDepacketizer((u) => onUnit({ timestamp: u.timestamp, keyframe: true, data: [u.data] }));
}

export const OPUS_FORMAT: CodecFormat = {
  name: 'OPUS',
  kind: 'audio',
  encoding: 'opus',
  aliases: [],
  ffprobeName: 'opus',
  clockRate: 48000,
  rtpmapChannels: 2,
  webrtc: { clockRate: 48000 },
  track: (f) => ({ kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2, fmtp: f.fmtp } }),
  rtpmap: () => ({ clockRate: 48000, channels: 2 }),
  // Its parameters (sprop-stereo, maxplaybackrate) describe the stream: passed on as they came.
  fmtp: (t) => t.codec.fmtp,
  mp4: OPUS_MP4,
  packetize: packetizeAudioFrame,
  depacketizer: (_track, onUnit) => onePacketPerFrame(onUnit),
};
