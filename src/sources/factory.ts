import { SourceError } from '../core/errors.js';
import type { Source, SourceFactory } from '../core/source.js';
import { FfmpegSource, type FfmpegContext } from './ffmpeg.js';

/** The URL schemes a stream's sources may use (served at /api/schemes later). */
export const SCHEMES = ['ffmpeg', 'rtsp', 'rtsps'] as const;

export function createSourceFactory(ffmpeg: FfmpegContext): SourceFactory {
  return (url: string, streamName: string): Source => {
    if (url.startsWith('ffmpeg:')) return new FfmpegSource(url, ffmpeg, streamName);
    // Until the native RTSP client lands (issue 3), cameras are pulled through ffmpeg, copying video.
    if (/^rtsps?:\/\//i.test(url)) return new FfmpegSource(url, ffmpeg, streamName, `ffmpeg:${url}#video=copy#audio=opus`);
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
    throw new SourceError(
      scheme ? `unsupported source scheme "${scheme}:" (supported: ${SCHEMES.join(', ')})` : `unsupported source "${url}"`,
      true,
    );
  };
}
