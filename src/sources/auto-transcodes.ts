// The transcodes a stream starts by itself (stream_defaults.transcode: auto) for a viewer that
// cannot take the codec its sources give: each reads the stream back through our own RTSP server,
// as `ffmpeg:<name>#video=h264` written by hand in the stream's list would, and gives one codec.
import type { AutoTranscode } from '../core/source.js';

/**
 * In the order a stream tries them for a viewer lacking a kind (source-plan.ts): H.264 for an
 * H.264-only browser of an H.265 camera; Opus before AAC, because a WebRTC viewer takes only Opus
 * and an MSE viewer that can play Opus then shares the one transcode; AAC for what takes only AAC
 * (stream.mp4, HLS, Safari). A name with `#` cannot be written in an ffmpeg: URL: none for it.
 */
export function autoTranscodes(streamName: string): readonly AutoTranscode[] {
  if (streamName.includes('#')) return [];
  const input = `ffmpeg:${streamName}`;
  return [
    // #hardware: the engine the startup probe found (sources/hardware/), else libx264.
    { url: `${input}#video=h264#hardware`, kind: 'video', codec: 'H264' },
    { url: `${input}#audio=opus`, kind: 'audio', codec: 'OPUS' },
    { url: `${input}#audio=aac`, kind: 'audio', codec: 'AAC' },
  ];
}
