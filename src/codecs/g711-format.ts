// G.711 A-law and µ-law over RTP (RFC 3551 4.5.14): a run of samples per packet, static payload
// types 8 and 0 at 8000 Hz mono, dynamic ones for other rates and channel counts.
import type { CodecName } from '../core/media.js';
import { packetizeAudioFrame } from '../rtp/audio-packetizer.js';
import type { CodecFormat } from './format.js';
import { onePacketPerFrame } from './opus-format.js';

function g711(name: CodecName & ('PCMA' | 'PCMU'), staticPayloadType: number, ffprobeName: string): CodecFormat {
  return {
    name,
    kind: 'audio',
    encoding: name,
    aliases: [],
    ffprobeName,
    clockRate: 8000,
    staticPayloadType,
    webrtc: { clockRate: 8000 },
    track: (f) => ({ kind: 'audio', codec: { name, clockRate: f.clockRate ?? 8000, channels: f.channels ?? 1, fmtp: f.fmtp } }),
    rtpmap: (t) => ({ clockRate: t.codec.clockRate, channels: t.codec.channels ?? 1 }),
    fmtp: () => undefined,
    packetize: packetizeAudioFrame,
    depacketizer: (_track, onUnit) => onePacketPerFrame(onUnit),
  };
}

export const PCMA_FORMAT = g711('PCMA', 8, 'pcm_alaw');
export const PCMU_FORMAT = g711('PCMU', 0, 'pcm_mulaw');
