// Sample entries of the stsd box, one per codec: avc1+avcC (ISO 14496-15 5.4), hvc1+hvcC (8.4),
// mp4a+esds (ISO 14496-14 5.6, descriptors 14496-1 7.2.6), Opus+dOps (Opus in ISOBMFF 4.3).
// `hvc1` (not go2rtc's `hev1`): the parameter sets are in hvcC, and Safari plays only hvc1.
import { box, fullBox, u16, u32, u8, zeros } from './boxes.js';
import { h264PictureSize, h265SpsInfo } from './sps.js';

/** A sample entry and what tkhd says of the track. */
export interface SampleEntry {
  box: Buffer;
  width?: number;
  height?: number;
}

function visualEntry(type: string, width: number, height: number, ...children: Buffer[]): Buffer {
  return box(
    type,
    zeros(6),
    u16(1), // data_reference_index
    zeros(16), // pre_defined, reserved, pre_defined[3]
    u16(width, height),
    u32(0x00480000, 0x00480000, 0), // 72 dpi, reserved
    u16(1), // frame_count
    zeros(32), // compressorname
    u16(0x0018, 0xffff), // depth, pre_defined = -1
    ...children,
  );
}

function audioEntry(type: string, channels: number, sampleRate: number, ...children: Buffer[]): Buffer {
  // samplerate is 16.16: a rate above 65535 does not fit, and players take it from the config.
  return box(type, zeros(6), u16(1), zeros(8), u16(channels, 16, 0, 0), u32(sampleRate <= 0xffff ? sampleRate * 0x10000 : 0), ...children);
}

const PASP_1_1 = box('pasp', u32(1, 1));

export function avc1Entry(sps: Buffer, pps: Buffer): SampleEntry | undefined {
  const size = h264PictureSize(sps);
  if (!size || sps.length < 4) return undefined;
  const avcC = box('avcC', u8(1, sps[1]!, sps[2]!, sps[3]!, 0xff, 0xe1), u16(sps.length), sps, u8(1), u16(pps.length), pps);
  return { box: visualEntry('avc1', size.width, size.height, avcC, PASP_1_1), ...size };
}

export function hvc1Entry(vps: Buffer, sps: Buffer, pps: Buffer): SampleEntry | undefined {
  const info = h265SpsInfo(sps);
  if (!info) return undefined;
  const array = (type: number, nal: Buffer) => Buffer.concat([u8(0x80 | type), u16(1, nal.length), nal]); // array_completeness = 1
  const hvcC = box(
    'hvcC',
    u8(1),
    info.profileTierLevel,
    u16(0xf000), // min_spatial_segmentation_idc 0
    u8(0xfc, 0xfc | info.chromaFormat, 0xf8 | (info.bitDepthLuma - 8), 0xf8 | (info.bitDepthChroma - 8)),
    u16(0), // avgFrameRate
    u8(((info.maxSubLayers & 7) << 3) | ((info.temporalIdNested & 1) << 2) | 3), // lengthSizeMinusOne 3
    u8(3),
    array(32, vps),
    array(33, sps),
    array(34, pps),
  );
  return { box: visualEntry('hvc1', info.width, info.height, hvcC, PASP_1_1), width: info.width, height: info.height };
}

/** A descriptor of 14496-1 with its size in the 4-byte form go2rtc and ffmpeg write. */
function descriptor(tag: number, ...body: Buffer[]): Buffer {
  const len = body.reduce((n, b) => n + b.length, 0);
  return Buffer.concat([u8(tag, 0x80 | ((len >> 21) & 0x7f), 0x80 | ((len >> 14) & 0x7f), 0x80 | ((len >> 7) & 0x7f), len & 0x7f), ...body]);
}

export function mp4aEntry(audioSpecificConfig: Buffer, channels: number, sampleRate: number): SampleEntry {
  const decoderConfig = descriptor(4, u8(0x40, 0x15, 0, 0, 0), u32(0, 0), descriptor(5, audioSpecificConfig));
  const esds = fullBox('esds', 0, 0, descriptor(3, u16(0), u8(0), decoderConfig, descriptor(6, u8(2))));
  return { box: audioEntry('mp4a', channels, sampleRate, esds) };
}

export function opusEntry(channels: number, inputSampleRate: number): SampleEntry {
  const dOps = box('dOps', u8(0, channels), u16(0), u32(inputSampleRate), u16(0), u8(0));
  return { box: audioEntry('Opus', channels, 48000, dOps) };
}
