// H.264 over RTP (RFC 6184): sprop-parameter-sets and profile-level-id in the fmtp (8.1), sent
// in packetization-mode 1 (FU-A), which is also the only mode WebRTC viewers get.
import { H264Depacketizer } from '../rtp/h264-depacketizer.js';
import { packetizeH264Frame } from '../rtp/h264-packetizer.js';
import type { CodecFormat } from './format.js';
import { parseFmtp, writeFmtp } from './fmtp.js';
import { findParams, parseSpropParameterSets, profileLevelId, withParameterSets } from './h264.js';
import { H264_MP4 } from '../formats/mp4/codec-use.js';

export const H264_FORMAT: CodecFormat = {
  name: 'H264',
  kind: 'video',
  encoding: 'H264',
  aliases: ['AVC'],
  ffprobeName: 'h264',
  clockRate: 90000,
  webrtc: { clockRate: 90000, requires: { key: 'packetization-mode', value: '1', absent: '0' } },
  track: (f) => ({
    kind: 'video',
    codec: { name: 'H264', clockRate: f.clockRate ?? H264_FORMAT.clockRate!, fmtp: f.fmtp },
    params: H264_FORMAT.parameterSets!.fromFmtp(f.fmtpParams),
  }),
  rtpmap: (t) => ({ clockRate: t.codec.clockRate }),
  fmtp(t) {
    const from = parseFmtp(t.codec.fmtp ?? '');
    const { sps, pps } = t.params ?? {};
    const sprop = sps && pps ? `${sps.toString('base64')},${pps.toString('base64')}` : from['sprop-parameter-sets'];
    // Our packetizer makes FU-A, which needs mode 1 whatever the source announced.
    return writeFmtp([
      ['packetization-mode', '1'],
      ['profile-level-id', (sps && profileLevelId(sps)) ?? from['profile-level-id']],
      ['sprop-parameter-sets', sprop],
    ]);
  },
  parameterSets: {
    fromFmtp: (fmtp) => findParams(fmtp['sprop-parameter-sets'] ? parseSpropParameterSets(fmtp['sprop-parameter-sets']) : []),
    update: withParameterSets,
    missing: (p) => !p.sps || !p.pps,
  },
  mp4: H264_MP4,
  packetize: packetizeH264Frame,
  depacketizer: (_track, onUnit) => new H264Depacketizer((au) => onUnit({ timestamp: au.timestamp, keyframe: au.keyframe, data: au.nals })),
};
