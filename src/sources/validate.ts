// Checks a source URL without starting anything: for the API, which must answer 400 with the
// reason for a source camrelay cannot run, and must refuse what a stranger on the network should
// not make ffmpeg do (read local files or devices, take raw command-line options).
import { SourceError } from '../core/errors.js';
import { parseFfmpegUrl, type IsStreamName } from './ffmpeg-url.js';

export interface CheckOptions {
  isStream: IsStreamName;
  /** The URL came through the API rather than from config.yaml. */
  fromNetwork: boolean;
}

const CAMERA_URL = /^(rtsps?|rtspx):\/\/[^\s]+$/i;

export function checkSourceUrl(url: string, opts: CheckOptions): void {
  if (url.trim() !== url || url === '') throw new SourceError('a source must be a non-empty URL without surrounding spaces', true);
  if (url.startsWith('ffmpeg:')) {
    const spec = parseFfmpegUrl(url, opts.isStream);
    if (!opts.fromNetwork) return;
    if (spec.raw.length > 0) throw new SourceError('#raw= is accepted only from config.yaml, not through the API', true);
    if (spec.input.kind === 'file' || spec.input.kind === 'device') {
      throw new SourceError(`local ${spec.input.kind} inputs are accepted only from config.yaml, not through the API: ${spec.input.path}`, true);
    }
    return;
  }
  if (CAMERA_URL.test(url)) {
    try {
      new URL(url.replace(/#.*$/, ''));
    } catch {
      throw new SourceError('not a valid URL', true);
    }
    return;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new SourceError(scheme ? `unsupported source scheme "${scheme}:"` : `unsupported source "${url}"`, true);
}
