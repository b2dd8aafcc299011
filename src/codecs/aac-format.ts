// AAC over RTP as MPEG4-GENERIC (RFC 3640): AAC-hbr/lbr AU headers as the fmtp describes them
// (4.1), the AudioSpecificConfig in `config`; served in AAC-hbr, the layout of our packetizer.
import { AacDepacketizer } from '../rtp/aac-depacketizer.js';
import { AAC_HBR_LAYOUT, packetizeAacFrame } from '../rtp/aac-packetizer.js';
import { aacLcConfig, aacRtpConfig } from './aac.js';
import type { CodecFormat } from './format.js';
import { parseFmtp } from './fmtp.js';
import { AAC_MP4 } from '../formats/mp4/codec-use.js';

const L = AAC_HBR_LAYOUT;
/** The fmtp of the payloads packetizeAac makes, without config. */
const AAC_HBR_FMTP = `streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=${L.sizeLength};indexlength=${L.indexLength};indexdeltalength=${L.indexDeltaLength}`;

export const AAC_FORMAT: CodecFormat = {
  name: 'AAC',
  kind: 'audio',
  encoding: 'MPEG4-GENERIC',
  aliases: ['AAC'],
  ffprobeName: 'aac',
  unsupported(f) {
    const cfg = aacRtpConfig(f.fmtpParams, f.clockRate ?? 0);
    if ('unsupported' in cfg) return `AAC with ${cfg.unsupported}`;
    if (!f.clockRate) return 'AAC without a clock rate';
    return undefined;
  },
  // The fmtp (config=…, sizelength=…) is kept: an RTSP re-serve and the depacketizer need it.
  track: (f) => ({ kind: 'audio', codec: { name: 'AAC', clockRate: f.clockRate!, channels: f.channels ?? 1, fmtp: f.fmtp } }),
  rtpmap: (t) => ({ clockRate: t.codec.clockRate, channels: t.codec.channels ?? 1 }),
  fmtp(t) {
    const from = parseFmtp(t.codec.fmtp ?? '');
    const config = from['config'] || aacLcConfig(t.codec.clockRate, t.codec.channels ?? 1);
    return AAC_HBR_FMTP + (config ? `;config=${config}` : '');
  },
  mp4: AAC_MP4,
  packetize: packetizeAacFrame,
  depacketizer(track, onUnit) {
    const cfg = aacRtpConfig(parseFmtp(track.codec.fmtp ?? ''), track.codec.clockRate);
    if ('unsupported' in cfg) throw new Error(`AAC track with ${cfg.unsupported}: trackFromMedia should have refused it`);
    return new AacDepacketizer(cfg, (u) => onUnit({ timestamp: u.timestamp, keyframe: true, data: [u.data] }));
  },
};
