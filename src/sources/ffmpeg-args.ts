import { SourceError } from '../core/errors.js';
import type { AudioTarget, FfmpegInput, FfmpegSourceSpec, VideoCodec, VirtualInput } from './ffmpeg-url.js';
import { encoderArgs, hardwarePlan, type EngineUse, type HardwareCodec, type HardwarePlan } from './hardware/engines.js';
import { HARDWARE_WAIT_MS, type HardwareEncoders } from './hardware/choice.js';

// Sources import parsing, checking and building from here as one unit.
export { checkInputExists, parseFfmpegUrl, type FfmpegSourceSpec } from './ffmpeg-url.js';

// ffmpeg command lines for `ffmpeg:` sources, after go2rtc's (internal/ffmpeg/ffmpeg.go) with
// camrelay's choices: the output always publishes RTSP over TCP to our own server, and H.264 is
// made for browsers (constrained baseline, no B-frames, an IDR every second so a viewer that
// joins late waits at most a second for a picture).

export type FfmpegLogLevel = 'quiet' | 'error' | 'warning' | 'info' | 'verbose' | 'debug';

export interface Kinds {
  video: boolean;
  audio: boolean;
}

export interface FfmpegArgsOptions {
  /**
   * Our own RTSP URL for a camrelay stream that a transcode reads, e.g.
   * `rtsp://127.0.0.1:8554/cam2`. `kinds` are the media the transcode needs from it.
   */
  streamUrl?: (name: string, kinds: Kinds) => string;
  /** ffmpeg's -loglevel (default 'error': stderr stays small and is all worth logging). */
  logLevel?: FfmpegLogLevel;
  /**
   * 'rtsp' (default) publishes to the publish URL; `{ nullSeconds }` instead encodes for that
   * long into `-f null -`, which proves a command line runs without a server.
   */
  output?: 'rtsp' | { nullSeconds: number };
  /**
   * What hardware detection found, for sources with `#hardware`; without it (or while detection
   * runs) they are encoded in software.
   */
  hardware?: Pick<HardwareEncoders, 'pick' | 'ready'>;
}

const LOW_DELAY = ['-fflags', 'nobuffer', '-flags', 'low_delay'];
/**
 * Reading our own stream: its RTSP output starts with the cached GOP, keyframe first, all at once.
 * `nobuffer` would drop what ffmpeg reads while it probes, keyframe included, and the decoder would
 * start mid-GOP on pictures whose references it never got (damaged until the camera's next
 * keyframe: bench/transcode-start-check.ts counts them). No fps probe: the encoder starts at once.
 */
const OWN_STREAM = ['-flags', 'low_delay', '-fpsprobesize', '0'];
// Socket I/O timeout for RTSP inputs, in microseconds: a dead camera ends ffmpeg instead of hanging it.
const RTSP_TIMEOUT = ['-timeout', '5000000'];
// Socket I/O timeout for http and rtmp inputs, in microseconds. Never -timeout for rtmp: there it
// means "wait this long for an incoming connection" and makes ffmpeg listen instead of connect.
const RW_TIMEOUT = ['-rw_timeout', '5000000'];
/**
 * The protocols ffmpeg may open for an http or rtmp input, nested ones included: an HLS playlist's
 * segments and keys are opened under the same list, so a playlist naming `file:/etc/passwd`,
 * `data:`, `udp://` or a pipe is refused by ffmpeg instead of read (httpproxy: http_proxy from
 * the environment; crypto: AES-128 HLS).
 */
export const HTTP_PROTOCOLS = 'http,https,tls,tcp,crypto,httpproxy';
export const RTMP_PROTOCOLS = 'rtmp,rtmps,tls,tcp';
// One keyframe a second whatever the frame rate, so a late joiner waits at most that long.
const KEYFRAME_EVERY_SECOND = 'expr:gte(t,n_forced*1)';

/** Which media the output keeps, as go2rtc decides it: none asked for means everything, copied. */
function wanted(spec: FfmpegSourceSpec): Kinds {
  const v = spec.video.length > 0;
  const a = spec.audio.length > 0;
  return v || a ? { video: v, audio: a } : { video: true, audio: true };
}

function allowedMediaTypes(k: Kinds): string[] {
  return ['-allowed_media_types', k.video && k.audio ? 'video+audio' : k.video ? 'video' : 'audio'];
}

function virtualGraph(input: VirtualInput): string {
  const opts = input.options.map(([k, v]) => `${k}=${v}`).join(':');
  let graph = opts ? `${input.video}=${opts}` : input.video;
  if (input.clock) {
    // `\:` keeps the strftime colon away from drawtext's own option parser.
    graph +=
      ",drawtext=text='%{localtime\\:%Y-%m-%d %X}':fontsize=h/14:fontcolor=white" +
      ':box=1:boxcolor=black@0.6:boxborderw=8:x=(w-tw)/2:y=h-th-h/20';
  }
  if (input.format) graph += `,format=${input.format}`;
  return graph;
}

function virtualAudioGraph(audio: NonNullable<VirtualInput['audio']>): string {
  return audio.source === 'sine'
    ? `sine=frequency=${audio.frequency}:sample_rate=48000`
    : 'anullsrc=channel_layout=stereo:sample_rate=48000';
}

function inputArgs(spec: FfmpegSourceSpec, input: FfmpegInput, opts: FfmpegArgsOptions): string[] {
  switch (input.kind) {
    case 'file':
      // A relative name like "concat:a|b" would be read as an ffmpeg protocol: say it is a file.
      return ['-re', '-stream_loop', '-1', '-i', input.path.startsWith('/') ? input.path : `file:${input.path}`];
    case 'device':
      return ['-f', 'v4l2', ...input.options.flatMap(([k, v]) => [`-${k}`, v]), '-i', input.path];
    case 'virtual': {
      const args = ['-re', '-f', 'lavfi', '-i', virtualGraph(input)];
      if (input.audio) args.push('-re', '-f', 'lavfi', '-i', virtualAudioGraph(input.audio));
      return args;
    }
    case 'url':
      if (input.protocol === 'http') return ['-protocol_whitelist', HTTP_PROTOCOLS, ...LOW_DELAY, ...RW_TIMEOUT, '-i', input.url];
      if (input.protocol === 'rtmp') return ['-protocol_whitelist', RTMP_PROTOCOLS, ...LOW_DELAY, ...RW_TIMEOUT, '-i', input.url];
      return [...allowedMediaTypes(wanted(spec)), ...LOW_DELAY, ...RTSP_TIMEOUT, '-rtsp_flags', 'prefer_tcp', '-i', input.url];
    case 'stream': {
      if (!opts.streamUrl) throw new SourceError(`cannot read stream "${input.name}": no RTSP server to read it from`, true);
      const kinds = wanted(spec);
      // Loopback TCP: UDP on loopback drops large keyframes (DESIGN.md).
      const url = opts.streamUrl(input.name, kinds);
      return [...allowedMediaTypes(kinds), ...OWN_STREAM, ...RTSP_TIMEOUT, '-rtsp_transport', 'tcp', '-i', url];
    }
  }
}

function videoCodecArgs(codec: VideoCodec, s: string): string[] {
  switch (codec) {
    case 'copy':
      return [`-c:${s}`, 'copy'];
    case 'h264':
      // ultrafast + baseline = Constrained Baseline: every browser and WebRTC stack decodes it.
      return [
        `-c:${s}`, 'libx264', `-preset:${s}`, 'ultrafast', `-tune:${s}`, 'zerolatency', `-profile:${s}`, 'baseline',
        `-pix_fmt:${s}`, 'yuv420p', `-bf:${s}`, '0', `-force_key_frames:${s}`, KEYFRAME_EVERY_SECOND,
      ];
    case 'mjpeg':
      // RTP/JPEG (RFC 2435) carries full-range 4:2:0 only.
      return [`-c:${s}`, 'mjpeg', `-pix_fmt:${s}`, 'yuvj420p', `-q:${s}`, '5'];
    case 'h265':
      // libx265 makes forced keyframes CRA unless told otherwise, and logs at info on its own.
      return [
        `-c:${s}`, 'libx265', `-preset:${s}`, 'ultrafast', `-tune:${s}`, 'zerolatency', `-pix_fmt:${s}`, 'yuv420p',
        `-bf:${s}`, '0', `-force_key_frames:${s}`, KEYFRAME_EVERY_SECOND, `-forced-idr:${s}`, '1',
        `-x265-params:${s}`, 'log-level=error',
      ];
  }
}

function audioCodecArgs(t: AudioTarget, s: string): string[] {
  switch (t.codec) {
    case 'copy':
      return [`-c:${s}`, 'copy'];
    case 'opus':
      // min_comp 0 makes the resampler fill timestamp gaps, so RTP timestamps advance evenly
      // (go2rtc's fix for choppy WebRTC audio from cameras with jittery audio clocks).
      return [
        `-c:${s}`, 'libopus', `-application:${s}`, 'lowdelay', '-min_comp', '0',
        `-ar:${s}`, String(t.rate ?? 48000), `-ac:${s}`, t.rate === 16000 ? '1' : '2',
      ];
    case 'pcma':
    case 'pcmu':
      return [`-c:${s}`, t.codec === 'pcma' ? 'pcm_alaw' : 'pcm_mulaw', `-ar:${s}`, String(t.rate ?? 8000), `-ac:${s}`, '1'];
    case 'aac':
      return [`-c:${s}`, 'aac'];
  }
}

/**
 * HLS in MPEG-TS carries AAC as ADTS, without the global header ffmpeg's RTSP muxer needs ("AAC
 * with no global headers is currently not supported", with -bsf:a aac_adtstoasc too): its audio
 * cannot be copied into RTSP.
 */
export function carriesAdts(input: FfmpegInput): boolean {
  if (input.kind !== 'url' || input.protocol !== 'http') return false;
  try {
    return new URL(input.url).pathname.toLowerCase().endsWith('.m3u8');
  } catch {
    return false;
  }
}

/** #width/#height as a scale, and the filters only software does here (#rotate, orientations). */
function videoWork(spec: FfmpegSourceSpec): { scale?: { w: number; h: number }; software: string[] } {
  const software: string[] = [];
  if (spec.rotate === 90) software.push('transpose=1');
  if (spec.rotate === 180) software.push('transpose=1,transpose=1');
  if (spec.rotate === 270) software.push('transpose=2');
  if (spec.orientation) software.push(spec.orientation);
  if (spec.width === undefined && spec.height === undefined) return { software };
  // -2 (not go2rtc's -1) for the missing side keeps it even, which yuv420p encoders need.
  return { scale: { w: spec.width ?? -2, h: spec.height ?? -2 }, software };
}

function filters(spec: FfmpegSourceSpec): string[] {
  const { scale, software } = videoWork(spec);
  return [...(scale ? [`scale=${scale.w}:${scale.h}`] : []), ...software];
}

/** The hardware codecs a source encodes, or undefined when its outputs cannot all use one engine. */
function hardwareCodecs(spec: FfmpegSourceSpec): HardwareCodec[] | undefined {
  // mjpeg stays in software (RTP/JPEG's full-range 4:2:0), and a copied track cannot share the
  // -vf chain that carries frames to the GPU: then the whole command is software.
  if (spec.video.length === 0 || !spec.video.every((c) => c === 'h264' || c === 'h265')) return undefined;
  return [...new Set(spec.video as HardwareCodec[])];
}

/** The engine a source's #hardware gets here (undefined = software). */
export function hardwareFor(spec: FfmpegSourceSpec, opts: FfmpegArgsOptions): EngineUse | undefined {
  if (!spec.hardware || !opts.hardware) return undefined;
  const codecs = hardwareCodecs(spec);
  return codecs ? opts.hardware.pick(spec.hardware, codecs, spec.url) : undefined;
}

/**
 * Waits (bounded, HARDWARE_WAIT_MS) for hardware detection when this source asks for hardware
 * and detection has not finished, so that a transcode started right after startup gets it too.
 * At once for every other source.
 */
export async function hardwareReady(spec: FfmpegSourceSpec, opts: FfmpegArgsOptions, signal?: AbortSignal): Promise<void> {
  if (!spec.hardware || !opts.hardware || !hardwareCodecs(spec)) return;
  await opts.hardware.ready(HARDWARE_WAIT_MS, signal);
}

/** The full argument list (without the binary) for one `ffmpeg:` source. */
export function buildFfmpegArgs(spec: FfmpegSourceSpec, publishUrl: string, opts: FfmpegArgsOptions = {}): string[] {
  const args = ['-hide_banner', '-loglevel', spec.logLevel ?? opts.logLevel ?? 'error', '-nostats'];
  const use = hardwareFor(spec, opts);
  // Only inputs of compressed video are decoded on the GPU (a lavfi picture or a V4L2 webcam's
  // raw frames are not); the main input is always input 0.
  const decodable = spec.input.kind === 'url' || spec.input.kind === 'stream' || spec.input.kind === 'file';
  const hw: HardwarePlan | undefined = use && hardwarePlan(use, { decodable, ...videoWork(spec) });
  if (hw) args.push(...hw.global, ...hw.input);
  args.push(...inputArgs(spec, spec.input, opts));
  args.push(...spec.raw);

  // Several #video= or #audio= make several output tracks of the same input track, so each
  // needs its own -map and per-stream options (go2rtc's "multimode").
  const multi = spec.video.length > 1 || spec.audio.length > 1;
  // A virtual input with audio has its tone as a second input.
  const audioInput = spec.input.kind === 'virtual' && spec.input.audio ? 1 : 0;
  spec.video.forEach((codec, i) => {
    if (multi) args.push('-map', '0:v:0?');
    const s = multi ? `v:${i}` : 'v';
    args.push(...(hw && (codec === 'h264' || codec === 'h265') ? encoderArgs(hw.engine, codec, s) : videoCodecArgs(codec, s)));
  });
  if (spec.bitrate) args.push('-b:v', spec.bitrate, '-maxrate:v', spec.bitrate, '-bufsize:v', spec.bitrate);
  const adts = carriesAdts(spec.input);
  spec.audio.forEach((target, i) => {
    if (multi) args.push('-map', `${audioInput}:a:0?`);
    // Home Assistant's orientations write #audio=copy, also for HLS cameras: same codec, made anew.
    const t: AudioTarget = adts && target.codec === 'copy' ? { codec: 'aac' } : target;
    args.push(...audioCodecArgs(t, multi ? `a:${i}` : 'a'));
  });

  if (spec.video.length === 0 && spec.audio.length === 0) args.push('-c', 'copy');
  else if (spec.video.length === 0) args.push('-vn');
  else if (spec.audio.length === 0) args.push('-an');

  const f = hw ? hw.filters : filters(spec);
  if (f.length > 0) args.push('-vf', f.join(','));

  const out = opts.output ?? 'rtsp';
  if (out === 'rtsp') args.push('-f', 'rtsp', '-rtsp_transport', 'tcp', publishUrl);
  else args.push('-t', String(out.nullSeconds), '-f', 'null', '-');
  return args;
}

/** go2rtc's form of our own URL for a stream, asking only for the media a transcode needs. */
export function loopbackStreamUrl(port: number, name: string, kinds: Kinds): string {
  const query = kinds.video && kinds.audio ? 'video&audio' : kinds.video ? 'video' : 'audio';
  return `rtsp://127.0.0.1:${port}/${encodeURIComponent(name)}?${query}`;
}
