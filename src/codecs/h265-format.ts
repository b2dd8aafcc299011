// H.265 over RTP (RFC 7798): sprop-vps/sps/pps in the fmtp (7.1); decoding order numbers
// (sprop-max-don-diff > 0) are not supported, as cameras do not send them. Sent over WebRTC to
// viewers that offer H265 (Chrome 136+ and Safari 18 with a hardware decoder) in single-stream
// mode (tx-mode SRST, what an offer without tx-mode means); profile, tier and level are matched
// in outputs/webrtc/h265-fmtp.ts.
import { H265Depacketizer } from '../rtp/h265-depacketizer.js';
import { packetizeH265Frame } from '../rtp/h265-packetizer.js';
import type { CodecFormat } from './format.js';
import { parseFmtp, writeFmtp } from './fmtp.js';
import { h265ParamsFromFmtp, withH265ParameterSets } from './h265.js';
import { H265_MP4 } from '../formats/mp4/codec-use.js';

export const H265_FORMAT: CodecFormat = {
  name: 'H265',
  kind: 'video',
  encoding: 'H265',
  aliases: ['HEVC'],
  ffprobeName: 'hevc',
  clockRate: 90000,
  webrtc: { clockRate: 90000, requires: { key: 'tx-mode', value: 'SRST', absent: 'SRST' } },
  unsupported: (f) => (Number(f.fmtpParams['sprop-max-don-diff'] ?? 0) > 0 ? 'H.265 with decoding order numbers (sprop-max-don-diff > 0)' : undefined),
  track: (f) => ({
    kind: 'video',
    codec: { name: 'H265', clockRate: f.clockRate ?? H265_FORMAT.clockRate!, fmtp: f.fmtp },
    params: h265ParamsFromFmtp(f.fmtpParams),
  }),
  rtpmap: (t) => ({ clockRate: t.codec.clockRate }),
  fmtp(t) {
    const from = parseFmtp(t.codec.fmtp ?? '');
    const p = t.params ?? {};
    return writeFmtp([
      ['sprop-vps', p.vps?.toString('base64') ?? from['sprop-vps']],
      ['sprop-sps', p.sps?.toString('base64') ?? from['sprop-sps']],
      ['sprop-pps', p.pps?.toString('base64') ?? from['sprop-pps']],
    ]);
  },
  parameterSets: {
    fromFmtp: h265ParamsFromFmtp,
    update: withH265ParameterSets,
    missing: (p) => !p.vps || !p.sps || !p.pps,
  },
  mp4: H265_MP4,
  packetize: packetizeH265Frame,
  depacketizer: (_track, onUnit) => new H265Depacketizer((au) => onUnit({ timestamp: au.timestamp, keyframe: au.keyframe, data: au.nals })),
};
