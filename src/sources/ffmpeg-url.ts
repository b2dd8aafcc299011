import { access, constants } from 'node:fs/promises';
import { SourceError } from '../core/errors.js';
import { maskCredentials } from '../core/log.js';
import { ENGINES, FOREIGN_ENGINES } from './hardware/engines.js';
import type { HardwareRequest } from './hardware/choice.js';

// go2rtc's `ffmpeg:` source syntax, parsed into a typed spec:
//   ffmpeg:<input>#video=h264#audio=opus#audio=pcma#width=1280#rotate=90#raw=-ss 10
// <input> is a file path, `device?video=/dev/video0&...` (V4L2), `virtual?video=testsrc2&...`
// (lavfi test pattern), an rtsp/http/rtmp URL, or the name of another camrelay stream.
// Everything is checked here, because values end up inside an ffmpeg filter graph or command
// line; what is not understood is refused with a permanent SourceError, never ignored.

export type VideoCodec = 'h264' | 'h265' | 'mjpeg' | 'copy';
export type AudioCodec = 'opus' | 'pcma' | 'pcmu' | 'aac' | 'copy';

export interface AudioTarget {
  codec: AudioCodec;
  /** Sample rate asked for with `#audio=pcma/16000`; undefined = the codec's usual one. */
  rate?: number;
}

export interface VirtualInput {
  kind: 'virtual';
  /** lavfi video source: testsrc, testsrc2, smptebars, ... */
  video: string;
  /** Options of that source in go2rtc's order (size, rate, color, duration, sar, decimals). */
  options: [string, string][];
  /** Pixel format appended as a `format=` filter. */
  format?: string;
  /** Draw the wall clock on the picture (default on; `clock=0` for a system without fonts). */
  clock: boolean;
  audio?: { source: 'sine'; frequency: number } | { source: 'silence' };
}

export type FfmpegInput =
  | { kind: 'file'; path: string }
  /** V4L2 device; `options` are ffmpeg input options in command-line order. */
  | { kind: 'device'; path: string; options: [string, string][] }
  | VirtualInput
  /** A network input; `protocol` is 'http' for http(s) (HLS, MJPEG, MPEG-TS, FLV) and 'rtmp' for rtmp(s). */
  | { kind: 'url'; url: string; protocol: 'rtsp' | 'http' | 'rtmp' }
  /** Another camrelay stream, read back from our own RTSP server. */
  | { kind: 'stream'; name: string };

export interface FfmpegSourceSpec {
  /** The source URL as configured. */
  url: string;
  input: FfmpegInput;
  /** One entry per `#video=`, in order; empty = no #video. */
  video: VideoCodec[];
  audio: AudioTarget[];
  width?: number;
  height?: number;
  rotate?: 90 | 180 | 270;
  bitrate?: string;
  /** `#raw=` pieces, split on whitespace, added as output options. */
  raw: string[];
  /**
   * Video filters from a `#raw=-vf <filters>` that is one of Home Assistant's orientations
   * (ORIENTATION_FILTERS); such a #raw= is taken out of `raw` and becomes this, so it joins the
   * -vf chain of #width/#height/#rotate and is the only #raw= the API accepts.
   */
  orientation?: string;
  /**
   * `#hardware` ('auto': the engine detection found, if any) or `#hardware=vaapi` (that engine if
   * it works here, else software with a warning). Only #video=h264/h265 outputs use it.
   */
  hardware?: HardwareRequest;
  /** `#query=log_level=debug` (what Home Assistant adds): ffmpeg's -loglevel for this source. */
  logLevel?: 'quiet' | 'error' | 'warning' | 'info' | 'verbose' | 'debug';
}

/**
 * What Home Assistant's camera orientation settings put behind `#raw=-vf ` (hflip, vflip,
 * transpose=1,vflip, transpose=2,vflip), widened to every pair of flips and quarter turns: none of
 * these filters reads a file, takes a device or opens a URL, and nothing else can follow them.
 */
const ORIENTATION_STEP = '(?:hflip|vflip|transpose=[0-3])';
const ORIENTATION_FILTERS = new RegExp(`^${ORIENTATION_STEP}(?:,${ORIENTATION_STEP})?$`);

export type IsStreamName = (name: string) => boolean;

const fail = (url: string, why: string): never => {
  throw new SourceError(`${why} (in "${maskCredentials(url)}")`, true);
};

/** go2rtc's fragment parser: split on '#', then on the first '='; values are not decoded. */
function fragments(s: string): [string, string][] {
  return s.split('#').map((part) => {
    const i = part.indexOf('=');
    return i > 0 ? [part.slice(0, i), part.slice(i + 1)] : [part, ''];
  });
}

const VIDEO_CODECS: readonly string[] = ['h264', 'h265', 'mjpeg', 'copy'] satisfies VideoCodec[];
const AUDIO_CODECS: readonly string[] = ['opus', 'pcma', 'pcmu', 'aac', 'copy'] satisfies AudioCodec[];
const PCM_RATES = [8000, 16000, 48000];

function parseAudio(url: string, v: string): AudioTarget {
  const [codec = '', rateText] = v.split('/');
  if (!AUDIO_CODECS.includes(codec)) {
    fail(url, `unsupported #audio=${v} (supported: ${AUDIO_CODECS.join(', ')}, pcma/16000, pcmu/48000, opus/16000)`);
  }
  if (rateText === undefined) return { codec: codec as AudioCodec };
  const rate = Number(rateText);
  const ok = codec === 'opus' ? rate === 16000 : (codec === 'pcma' || codec === 'pcmu') && PCM_RATES.includes(rate);
  if (!ok) fail(url, `unsupported #audio=${v}`);
  return { codec: codec as AudioCodec, rate };
}

// Maps, not object literals, wherever the key comes from the URL: `#constructor` or
// `#rotate=__proto__` must not find Object.prototype's members.
const NOT_YET = new Map<string, string>([
  ['input', 'ffmpeg input templates'],
  ['drawtext', 'text overlays'],
  ['async', 'wall-clock audio resync'],
]);
const ROTATIONS = new Map<string, 90 | 180 | 270>([['90', 90], ['180', 180], ['270', 270], ['-90', 270]]);

function applyFragment(spec: FfmpegSourceSpec, key: string, value: string): void {
  const url = spec.url;
  switch (key) {
    case 'video':
      if (!VIDEO_CODECS.includes(value)) fail(url, `unsupported #video=${value} (supported: ${VIDEO_CODECS.join(', ')})`);
      spec.video.push(value as VideoCodec);
      return;
    case 'audio':
      spec.audio.push(parseAudio(url, value));
      return;
    case 'width':
    case 'height': {
      // -1 keeps the aspect ratio, as in go2rtc; ffmpeg's -2 also keeps it but rounds to even.
      if (!/^(-1|-2|[1-9]\d{0,4})$/.test(value)) fail(url, `#${key}=${value} is not a size in pixels`);
      spec[key] = Number(value);
      return;
    }
    case 'rotate': {
      const r = ROTATIONS.get(value);
      if (r === undefined) fail(url, `#rotate=${value} must be 90, 180, 270 or -90`);
      spec.rotate = r;
      return;
    }
    case 'bitrate':
      if (!/^\d+(\.\d+)?[kKmM]?$/.test(value)) fail(url, `#bitrate=${value} is not a bitrate like 2M or 800k`);
      spec.bitrate = value;
      return;
    case 'raw':
      spec.raw.push(...value.split(/\s+/).filter(Boolean));
      return;
    case 'hardware': {
      // The first one counts, as in go2rtc. Only a name: the device is the one detection found.
      if (spec.hardware) return;
      if (value === '') spec.hardware = 'auto';
      else if ((ENGINES as readonly string[]).includes(value) || FOREIGN_ENGINES.has(value)) spec.hardware = value as HardwareRequest;
      else fail(url, `unknown #hardware=${value} (supported: ${[...ENGINES, ...FOREIGN_ENGINES.keys()].join(', ')}, or #hardware alone to pick)`);
      return;
    }
    case 'query': {
      // Only a log level: anything else in it would reach ffmpeg's command line.
      const m = /^log_level=(quiet|error|warning|info|verbose|debug|trace)$/.exec(value);
      if (!m) fail(url, `#query=${value} is not supported (only #query=log_level=<level>)`);
      spec.logLevel = m![1] === 'trace' ? 'debug' : (m![1] as FfmpegSourceSpec['logLevel']);
      return;
    }
    default: {
      const what = NOT_YET.get(key);
      fail(url, what ? `#${key} (${what}) is not supported yet` : `unknown fragment #${key}${value ? `=${value}` : ''}`);
    }
  }
}

// lavfi sources that only generate pictures (no `movie`, which reads files).
const VIRTUAL_VIDEO = new Set([
  'testsrc', 'testsrc2', 'smptebars', 'smptehdbars', 'rgbtestsrc', 'yuvtestsrc', 'pal75bars', 'pal100bars',
  'color', 'mandelbrot', 'life', 'cellauto', 'nullsrc', 'allrgb', 'allyuv', 'mptestsrc', 'gradients',
]);
// go2rtc's size shortcuts.
const SIZE_ALIASES = new Map<string, string>([
  ['720', '1280x720'], ['1080', '1920x1080'], ['2K', '2560x1440'], ['4K', '3840x2160'], ['8K', '7680x4320'],
]);
// What each virtual option may look like: nothing here can close a filter option or chain a filter.
const VIRTUAL_OPTIONS = new Map<string, RegExp>([
  ['size', /^(\d{1,5}x\d{1,5}|[a-z0-9]+)$/i],
  ['rate', /^\d+(\.\d+)?(\/\d+)?$/],
  ['color', /^#?[\w@.]+$/],
  ['duration', /^\d+(\.\d+)?$/],
  ['sar', /^\d+(\/\d+)?$/],
  ['decimals', /^\d$/],
]);

function queryPairs(q: string): [string, string][] {
  return [...new URLSearchParams(q).entries()];
}

function parseVirtual(url: string, q: string): VirtualInput {
  const params = new Map<string, string>();
  for (const [k, v] of queryPairs(q)) if (!params.has(k)) params.set(k, v);
  const video = params.get('video') || 'testsrc';
  if (!VIRTUAL_VIDEO.has(video)) fail(url, `virtual video=${video} is not a known test source (${[...VIRTUAL_VIDEO].join(', ')})`);
  const input: VirtualInput = { kind: 'virtual', video, options: [], clock: true };
  for (const [k, raw] of params) {
    let v = raw;
    switch (k) {
      case 'video':
        continue;
      case 'format':
        if (!/^\w+$/.test(v)) fail(url, `virtual format=${v} is not a pixel format`);
        input.format = v;
        continue;
      case 'clock':
        if (!['0', '1', 'false', 'true'].includes(v)) fail(url, `virtual clock=${v} must be 0 or 1`);
        input.clock = v === '1' || v === 'true';
        continue;
      case 'audio':
      case 'frequency':
        continue;
      case 'decimals':
        // Only testsrc draws a number with decimals (go2rtc passes it nowhere else).
        if (video !== 'testsrc') continue;
        break;
      case 'size':
        v = SIZE_ALIASES.get(v) ?? v;
        break;
      default:
        if (!VIRTUAL_OPTIONS.has(k)) fail(url, `unknown virtual parameter "${k}"`);
    }
    if (!VIRTUAL_OPTIONS.get(k)?.test(v)) fail(url, `virtual ${k}=${raw} is not valid`);
    input.options.push([k, v]);
  }
  // go2rtc's defaults, added after what was given.
  if (!params.has('size')) input.options.push(['size', '1920x1080']);
  if (video === 'testsrc' && !params.has('decimals')) input.options.push(['decimals', '2']);

  const audio = params.get('audio');
  const frequency = params.get('frequency');
  if (audio === 'sine') {
    const f = frequency === undefined ? 1000 : Number(frequency);
    if (!Number.isInteger(f) || f < 1 || f > 20000) fail(url, `virtual frequency=${frequency} must be 1..20000 Hz`);
    input.audio = { source: 'sine', frequency: f };
  } else if (audio === 'silence') {
    if (frequency !== undefined) fail(url, 'virtual frequency= only goes with audio=sine');
    input.audio = { source: 'silence' };
  } else if (audio !== undefined) {
    fail(url, `virtual audio=${audio} must be sine or silence`);
  } else if (frequency !== undefined) {
    fail(url, 'virtual frequency= only goes with audio=sine');
  }
  return input;
}

// V4L2 input options go2rtc passes on, in the order we put them on the command line.
const DEVICE_OPTIONS = ['input_format', 'video_size', 'framerate', 'pixel_format', 'use_libv4l2'];
const DEVICE_VALUE = /^[\w./:-]+$/;

function parseDevice(url: string, q: string): FfmpegInput {
  const params = new Map<string, string>();
  for (const [k, v] of queryPairs(q)) {
    const key = k === 'resolution' ? 'video_size' : k;
    if (key === 'audio') fail(url, 'audio devices (device?audio=) are not supported yet');
    if (key !== 'video' && !DEVICE_OPTIONS.includes(key)) fail(url, `unknown device parameter "${k}"`);
    if (!DEVICE_VALUE.test(v)) fail(url, `device ${k}=${v} is not valid`);
    params.set(key, v);
  }
  const video = params.get('video');
  if (!video) fail(url, 'device needs video=/dev/videoN');
  // go2rtc numbers devices; on Linux the number is the /dev/videoN suffix.
  const path = /^\d+$/.test(video!) ? `/dev/video${video}` : video!;
  if (!path.startsWith('/')) fail(url, `device video=${video} must be a number or an absolute path`);
  const options = DEVICE_OPTIONS.filter((k) => params.has(k)).map((k): [string, string] => [k, params.get(k)!]);
  return { kind: 'device', path, options };
}

function parseInput(url: string, s: string, isStream: IsStreamName): FfmpegInput {
  if (s === '') fail(url, 'ffmpeg source without an input');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme === 'rtsp' || scheme === 'rtsps') return { kind: 'url', url: s, protocol: 'rtsp' };
    if (['http', 'https', 'rtmp', 'rtmps'].includes(scheme)) {
      let host = '';
      try {
        host = new URL(s).hostname;
      } catch {
        // Left empty: refused below with the reason.
      }
      if (!host) fail(url, `not a valid ${scheme} URL`);
      if (/\s/.test(s)) fail(url, `a ${scheme} URL must not contain spaces (write them %20)`);
    }
    if (scheme === 'http' || scheme === 'https') return { kind: 'url', url: s, protocol: 'http' };
    if (scheme === 'rtmp' || scheme === 'rtmps') return { kind: 'url', url: s, protocol: 'rtmp' };
    fail(url, `unsupported input scheme "${scheme}://"`);
  }
  // Stream names cannot contain '/', so anything with one is a path.
  if (!s.includes('/') && isStream(s)) return { kind: 'stream', name: s };
  const q = s.indexOf('?');
  if (q > 0) {
    const head = s.slice(0, q);
    if (head === 'device') return parseDevice(url, s.slice(q + 1));
    if (head === 'virtual') return parseVirtual(url, s.slice(q + 1));
    if (head === 'tts') fail(url, 'tts inputs are not supported');
  }
  return { kind: 'file', path: s };
}

/**
 * Parses an `ffmpeg:` source URL. `isStream` says whether a bare name is a configured stream
 * (then it is transcoded from our own RTSP server) rather than a file in the working directory.
 * Throws a permanent SourceError for anything it does not understand.
 */
export function parseFfmpegUrl(url: string, isStream: IsStreamName = () => false): FfmpegSourceSpec {
  if (!url.startsWith('ffmpeg:')) fail(url, 'not an ffmpeg: source');
  const body = url.slice('ffmpeg:'.length);
  const hash = body.indexOf('#');
  const spec: FfmpegSourceSpec = {
    url,
    input: parseInput(url, hash < 0 ? body : body.slice(0, hash), isStream),
    video: [],
    audio: [],
    raw: [],
  };
  if (hash >= 0) for (const [k, v] of fragments(body.slice(hash + 1))) applyFragment(spec, k, v);
  if (spec.raw.length === 2 && spec.raw[0] === '-vf' && ORIENTATION_FILTERS.test(spec.raw[1]!)) {
    spec.orientation = spec.raw[1]!;
    spec.raw = [];
  }

  const encodes = spec.video.some((c) => c !== 'copy');
  const filters = [
    spec.width !== undefined && '#width',
    spec.height !== undefined && '#height',
    spec.rotate && '#rotate',
    spec.orientation && `#raw=-vf ${spec.orientation}`,
  ].filter(Boolean);
  if (filters.length > 0 && !encodes) fail(url, `${filters.join(', ')} ${filters.length > 1 ? 'need' : 'needs'} a video encoder: add #video=h264`);
  if (spec.bitrate && !encodes) fail(url, '#bitrate needs a video encoder: add #video=h264');
  // A lavfi picture is raw video: there is nothing to copy into RTSP.
  if (spec.input.kind === 'virtual' && !encodes) fail(url, 'a virtual input needs #video=h264 (or h265)');
  if (spec.input.kind === 'virtual' && spec.input.audio && spec.audio.some((a) => a.codec === 'copy')) {
    fail(url, 'virtual audio is raw PCM: use #audio=opus, pcma, pcmu or aac instead of copy');
  }
  return spec;
}

/**
 * A file or device that does not exist fails at once and for good (SourceError, permanent),
 * instead of ffmpeg being retried with backoff until start_timeout.
 */
export async function checkInputExists(spec: FfmpegSourceSpec): Promise<void> {
  const { input } = spec;
  if (input.kind !== 'file' && input.kind !== 'device') return;
  try {
    await access(input.path, constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = input.kind === 'file' ? 'file' : 'device';
    if (code === 'EACCES') throw new SourceError(`${what} not readable (permission denied): ${input.path}`, true);
    throw new SourceError(`${what} not found: ${input.path}`, true);
  }
}

/**
 * The input part of an `ffmpeg:` source (before the first `#`), as written; undefined for any
 * other source. `ffmpeg:cam#audio=opus` → `cam`: what a stream name would have to be for the
 * source to read that stream.
 */
export function ffmpegInputText(url: string): string | undefined {
  if (!url.startsWith('ffmpeg:')) return undefined;
  const body = url.slice('ffmpeg:'.length);
  const hash = body.indexOf('#');
  return hash < 0 ? body : body.slice(0, hash);
}

/**
 * Which stream an `ffmpeg:` source reads back, and which of its kinds: `ffmpeg:cam#audio=opus`
 * reads the audio of `cam`; with neither `#video=` nor `#audio=` it reads both. Any bare input
 * (no '/': stream names cannot hold one) is a candidate; whether a stream of that name exists is
 * for the caller to say (a Stream compares it with its own name). Undefined for any other source.
 * Syntax only: nothing is validated here (parseFfmpegUrl does that).
 */
export function streamReadBy(url: string): { stream: string; kinds: ('video' | 'audio')[] } | undefined {
  const input = ffmpegInputText(url);
  if (!input || input.includes('/')) return undefined;
  const hash = url.indexOf('#');
  const keys = hash < 0 ? [] : url.slice(hash + 1).split('#');
  const kinds = (['video', 'audio'] as const).filter((k) => keys.some((part) => part.startsWith(`${k}=`)));
  return { stream: input, kinds: kinds.length > 0 ? kinds : ['video', 'audio'] };
}
