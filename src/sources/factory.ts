import { SourceError } from '../core/errors.js';
import { maskCredentials } from '../core/log.js';
import type { Source, SourceFactory, StreamInputOf } from '../core/source.js';
import type { RtspClientOptions } from '../rtsp/client.js';
import { parseFfmpegUrl, streamReadBy } from './ffmpeg-url.js';
import { FfmpegSource, type FfmpegContext } from './ffmpeg.js';
import { codecPlan, ProbedFfmpegSource } from './pulled.js';
import { RtspSource } from './rtsp.js';
import { checkSourceUrl, PULLED_URL } from './validate.js';

/** The URL schemes a stream's sources may use, as /api/schemes lists them. */
export const SCHEMES = ['ffmpeg', 'rtsp', 'rtsps', 'rtspx', 'http', 'https', 'rtmp', 'rtmps'] as const;

/** An ffmpeg source; for an http input without #video/#audio, with the codecs it calls for (pulled.ts). */
function ffmpegSource(url: string, ffmpegUrl: string, ffmpeg: FfmpegContext, streamName: string): Source {
  const plan = codecPlan(parseFfmpegUrl(ffmpegUrl, ffmpeg.isStream));
  if (plan === 'probe') return new ProbedFfmpegSource(url, ffmpeg, streamName, ffmpegUrl);
  return new FfmpegSource(url, ffmpeg, streamName, plan === 'copy' ? ffmpegUrl : ffmpegUrl + plan.fragments);
}

/**
 * Which stream a source URL reads back (a transcode, `ffmpeg:cam#audio=opus`), for the Stream to
 * tell its own transcodes from cameras without knowing the URL syntax. Give it to the
 * StreamRegistry with the factory: `{ make: factory, reads: sourceReads }`.
 */
export const sourceReads: StreamInputOf = (url) => streamReadBy(url);

export interface SourceTrust {
  /**
   * Whether the current sources of a stream came through the API (StreamRegistry.originOf).
   * Those are checked again as network sources every time one starts: `ffmpeg:<name>` must
   * still name a stream then, and fails with the reason instead of opening a file or device.
   */
  fromApi?: (streamName: string) => boolean;
}

/**
 * `rtsp` tunes the native RTSP client (timeouts); cameras are pulled without ffmpeg. To pull one
 * through ffmpeg anyway (a camera whose RTSP only ffmpeg copes with), write `ffmpeg:rtsp://…`.
 */
export function createSourceFactory(ffmpeg: FfmpegContext, rtsp: Partial<RtspClientOptions> = {}, trust: SourceTrust = {}): SourceFactory {
  return (url: string, streamName: string): Source => {
    if (trust.fromApi?.(streamName)) {
      try {
        checkSourceUrl(url, { isStream: ffmpeg.isStream, fromNetwork: true });
      } catch (e) {
        if (!(e instanceof SourceError)) throw e;
        throw new SourceError(`source from the API refused at start: ${e.message}`, true);
      }
    }
    if (url.startsWith('ffmpeg:')) return ffmpegSource(url, url, ffmpeg, streamName);
    // http(s) (MJPEG, HLS, MPEG-TS, FLV) and rtmp(s) cameras are pulled through ffmpeg.
    if (PULLED_URL.test(url)) return ffmpegSource(url, `ffmpeg:${url}`, ffmpeg, streamName);
    if (/^rtsp[sx]?:\/\//i.test(url)) return new RtspSource(url, streamName, rtsp);
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
    throw new SourceError(
      scheme ? `unsupported source scheme "${scheme}:" (supported: ${SCHEMES.join(', ')})` : `unsupported source "${maskCredentials(url)}"`,
      true,
    );
  };
}
