// Checks a source URL without starting anything: for the API, which must answer 400 with the
// reason for a source camrelay cannot run, and must refuse what a stranger on the network should
// not make ffmpeg do (read local files or devices, take raw command-line options, read the
// server's environment). The source factory runs the same check again each time a source that
// came through the API starts, so what was a stream reference at PUT time can never turn into a
// file or device later.
import { SourceError } from '../core/errors.js';
import { maskCredentials } from '../core/log.js';
import { parseFfmpegUrl, type FfmpegSourceSpec, type IsStreamName } from './ffmpeg-url.js';

export interface CheckOptions {
  isStream: IsStreamName;
  /** The URL came through the API rather than from config.yaml. */
  fromNetwork: boolean;
}

/**
 * The answer to any source from the API holding `${`. It names neither the variable nor the
 * source: set or unset, the answer is the same, so the API cannot be used to probe the
 * environment.
 */
export const ENV_REFUSAL = '"${" is not allowed in a source from the API: environment variables are substituted only in config.yaml';

// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const CAMERA_URL = /^(rtsps?|rtspx):\/\/[^\s]+$/i;
/** Sources camrelay pulls through ffmpeg as if written `ffmpeg:<url>` (sources/pulled.ts). */
export const PULLED_URL = /^(https?|rtmps?):\/\//i;

/** Returns the parsed spec of an `ffmpeg:` source (undefined for a camera URL); throws a permanent SourceError. */
export function checkSourceUrl(url: string, opts: CheckOptions): FfmpegSourceSpec | undefined {
  if (opts.fromNetwork) {
    // config.yaml is parsed with env substitution when an API change is saved: refuse before that.
    if (url.includes('${')) throw new SourceError(ENV_REFUSAL, true);
    // A NUL cannot reach a command line (spawn throws); CR/LF would split log lines and requests.
    if (CONTROL_CHARS.test(url)) throw new SourceError('a source from the API must not contain control characters (NUL, CR, LF, tab…)', true);
  }
  if (url.trim() !== url || url === '') throw new SourceError('a source must be a non-empty URL without surrounding spaces', true);
  if (url.startsWith('ffmpeg:')) {
    const spec = parseFfmpegUrl(url, opts.isStream);
    if (!opts.fromNetwork) return spec;
    // Home Assistant's orientations (`#raw=-vf hflip`, …) were moved out of raw by the parser.
    if (spec.raw.length > 0) {
      throw new SourceError('#raw= is accepted only from config.yaml, not through the API (except -vf with hflip, vflip, transpose=0..3 or a comma-joined pair of them)', true);
    }
    if (spec.input.kind === 'file') {
      throw new SourceError(
        `local file inputs are accepted only from config.yaml, not through the API: ${spec.input.path} (no stream has that name; ffmpeg:<name> from the API must name an existing stream)`,
        true,
      );
    }
    if (spec.input.kind === 'device') {
      throw new SourceError(`local device inputs are accepted only from config.yaml, not through the API: ${spec.input.path}`, true);
    }
    return spec;
  }
  // An http/rtmp camera is `ffmpeg:<url>`: the same parse and the same rules from the API.
  if (PULLED_URL.test(url)) return checkSourceUrl(`ffmpeg:${url}`, opts);
  if (CAMERA_URL.test(url)) {
    try {
      new URL(url.replace(/#.*$/, ''));
    } catch {
      throw new SourceError('not a valid URL', true);
    }
    return undefined;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new SourceError(scheme ? `unsupported source scheme "${scheme}:"` : `unsupported source "${maskCredentials(url)}"`, true);
}
