// Hardware video encoding for `#video=h264#hardware` and `#hardware=<engine>` (go2rtc's
// fragment), as pure functions: what each engine adds to an ffmpeg command line. Nothing here
// looks at the machine; detect.ts finds what works, choice.ts picks per source.
//
// Every engine keeps what the software encoders promise browsers (ffmpeg-args.ts): H.264
// Constrained Baseline where the encoder can say so, no B-frames, and an IDR every second (forced
// keyframes made IDR, with a GOP bound for an encoder that ignores forced ones).

/** Engines camrelay can run (Linux). */
export const ENGINES = ['vaapi', 'cuda', 'qsv', 'v4l2m2m', 'rkmpp'] as const;
export type Engine = (typeof ENGINES)[number];

/** go2rtc's names for engines of other systems: accepted, never detected here (software then). */
export const FOREIGN_ENGINES = new Map<string, string>([
  ['videotoolbox', 'macOS'],
  ['dxva2', 'Windows'],
]);

export type HardwareCodec = 'h264' | 'h265';

/** An engine as detection found it working, with the device it works on. */
export interface EngineUse {
  engine: Engine;
  /**
   * vaapi and qsv: the DRM render node (/dev/dri/renderD128); cuda: the GPU index ('0').
   * v4l2m2m and rkmpp: none (ffmpeg finds their device itself). Always from detection, never
   * from a source URL.
   */
  device?: string;
}

/** The video processing a source asks for, for the engine to do on the GPU or in software. */
export interface VideoWork {
  /** The input carries compressed video a GPU can decode (a camera, a stream, a file). */
  decodable: boolean;
  /** #width/#height, as ffmpeg-args.ts writes them (-2 = keep the aspect, even). */
  scale?: { w: number; h: number };
  /** Filters with no GPU equivalent used here (#rotate, Home Assistant's orientations). */
  software: string[];
}

/** What an engine adds to one command line; buildFfmpegArgs splices the parts in. */
export interface HardwarePlan {
  engine: Engine;
  /** Before every input: the device (and the one filters upload to). */
  global: string[];
  /** Options of the main input, before its -i: hardware decoding. */
  input: string[];
  /** The whole -vf chain (empty only when the frames go from decoder to encoder untouched). */
  filters: string[];
}

export const ENCODERS: Record<Engine, Record<HardwareCodec, string>> = {
  vaapi: { h264: 'h264_vaapi', h265: 'hevc_vaapi' },
  qsv: { h264: 'h264_qsv', h265: 'hevc_qsv' },
  cuda: { h264: 'h264_nvenc', h265: 'hevc_nvenc' },
  v4l2m2m: { h264: 'h264_v4l2m2m', h265: 'hevc_v4l2m2m' },
  rkmpp: { h264: 'h264_rkmpp', h265: 'hevc_rkmpp' },
};

// The same expression as the software encoders: one keyframe a second whatever the frame rate.
const KEYFRAME_EVERY_SECOND = 'expr:gte(t,n_forced*1)';
// Bound for an encoder that ignores forced keyframes: 2 s at 25 fps.
const GOP = '50';
// ffmpeg's name of the hardware device made by -init_hw_device, for -hwaccel_device and filters.
const DEV = 'hw';

function keyframes(s: string): string[] {
  return [`-g:${s}`, GOP, `-force_key_frames:${s}`, KEYFRAME_EVERY_SECOND];
}

/** The encoder options for one output stream `s` ('v' or 'v:1'). */
export function encoderArgs(engine: Engine, codec: HardwareCodec, s: string): string[] {
  const c = [`-c:${s}`, ENCODERS[engine][codec]];
  const h264 = codec === 'h264';
  switch (engine) {
    case 'vaapi':
      // A forced I-frame is an IDR in vaapi_encode. No SEI: nothing in it helps a player here.
      return [...c, `-profile:${s}`, h264 ? 'constrained_baseline' : 'main', `-bf:${s}`, '0', ...keyframes(s), `-sei:${s}`, '0'];
    case 'qsv':
      return [...c, `-profile:${s}`, h264 ? 'baseline' : 'main', `-bf:${s}`, '0', ...keyframes(s), `-forced_idr:${s}`, '1', `-async_depth:${s}`, '1'];
    case 'cuda':
      // p2 + ll: fast, low latency; forced keyframes are plain I-frames unless told.
      return [...c, `-profile:${s}`, h264 ? 'baseline' : 'main', `-preset:${s}`, 'p2', `-tune:${s}`, 'll', `-bf:${s}`, '0', ...keyframes(s), `-forced-idr:${s}`, '1'];
    case 'v4l2m2m':
      // The wrapper has no named profiles: 578 is FF_PROFILE_H264_CONSTRAINED_BASELINE, which it
      // maps to the V4L2 control (an encoder without it logs a warning and goes on).
      return [...c, ...(h264 ? [`-profile:${s}`, '578'] : []), `-bf:${s}`, '0', ...keyframes(s)];
    case 'rkmpp':
      return [...c, `-bf:${s}`, '0', ...keyframes(s)];
  }
}

function scaleText(scale: VideoWork['scale'], prefix: string): string[] {
  return scale ? [`${prefix}=w=${scale.w}:h=${scale.h}`] : [];
}

/**
 * Whether frames stay on the GPU from decoder to encoder. Only for inputs a GPU decodes, and only
 * when every filter has a GPU form: rotating and flipping (transpose_vaapi and kin) exist on some
 * drivers only, so those run in software between a GPU decode and a GPU encode instead.
 */
function onGpu(engine: Engine, work: VideoWork): boolean {
  if (!work.decodable || work.software.length > 0) return false;
  return engine === 'vaapi' || engine === 'qsv' || engine === 'cuda';
}

/**
 * The command-line parts for `use` and the video work a source asks for. A camera codec the GPU
 * cannot decode is decoded in software by ffmpeg: the vaapi chain takes those frames too
 * (`format=vaapi|nv12,hwupload`, as go2rtc's), and so does NVENC unless scale_cuda has to
 * scale them; the qsv GPU chain (hwmap) needs the GPU's decoder.
 */
export function hardwarePlan(use: EngineUse, work: VideoWork): HardwarePlan {
  const { engine } = use;
  const gpu = onGpu(engine, work);
  const sw = [...(work.scale ? [`scale=${work.scale.w}:${work.scale.h}`] : []), ...work.software];
  switch (engine) {
    case 'vaapi': {
      const global = ['-init_hw_device', `vaapi=${DEV}:${use.device ?? '/dev/dri/renderD128'}`, '-filter_hw_device', DEV];
      // Limited range and nv12 for the encoder: a full-range (yuvj420p) camera picture would
      // otherwise be encoded with the wrong levels.
      const out = `scale_vaapi=${work.scale ? `w=${work.scale.w}:h=${work.scale.h}:` : ''}format=nv12:out_range=tv`;
      if (gpu) {
        return {
          engine,
          global,
          input: ['-hwaccel', 'vaapi', '-hwaccel_device', DEV, '-hwaccel_output_format', 'vaapi', '-hwaccel_flags', 'allow_profile_mismatch'],
          filters: ['format=vaapi|nv12', 'hwupload', out],
        };
      }
      // Decoded on the GPU (when it can) into system memory for the software filters, then up.
      return {
        engine,
        global,
        input: work.decodable ? ['-hwaccel', 'vaapi', '-hwaccel_device', DEV, '-hwaccel_flags', 'allow_profile_mismatch'] : [],
        filters: [...sw, 'format=nv12', 'hwupload', 'scale_vaapi=format=nv12:out_range=tv'],
      };
    }
    case 'qsv': {
      // QSV on Linux runs on a VAAPI device: decode there, map the frames to QSV for the encoder.
      const global = ['-init_hw_device', `vaapi=va:${use.device ?? '/dev/dri/renderD128'}`, '-init_hw_device', `qsv=${DEV}@va`, '-filter_hw_device', DEV];
      if (gpu) {
        return {
          engine,
          global,
          input: ['-hwaccel', 'vaapi', '-hwaccel_device', 'va', '-hwaccel_output_format', 'vaapi'],
          // As ffmpeg's QuickSync guide has it; a codec the GPU cannot decode fails here (as
          // NVIDIA's does in go2rtc) instead of falling back.
          filters: ['hwmap=derive_device=qsv', 'format=qsv', ...scaleText(work.scale, 'scale_qsv')],
        };
      }
      // The QSV encoders take nv12 from system memory themselves.
      return { engine, global, input: work.decodable ? ['-hwaccel', 'vaapi', '-hwaccel_device', 'va'] : [], filters: [...sw, 'format=nv12'] };
    }
    case 'cuda': {
      const global = ['-init_hw_device', `cuda=${DEV}:${use.device ?? '0'}`, '-filter_hw_device', DEV];
      if (gpu) {
        // NVENC takes the CUDA frames as they are; scale_cuda scales them there.
        return {
          engine,
          global,
          input: ['-hwaccel', 'cuda', '-hwaccel_device', DEV, '-hwaccel_output_format', 'cuda'],
          filters: scaleText(work.scale, 'scale_cuda'),
        };
      }
      return { engine, global, input: work.decodable ? ['-hwaccel', 'cuda', '-hwaccel_device', DEV] : [], filters: [...sw, 'format=nv12'] };
    }
    case 'v4l2m2m':
      // Raspberry Pi: the encoder only; decoding and filters stay in software (as in go2rtc).
      return { engine, global: [], input: [], filters: [...sw, 'format=yuv420p'] };
    case 'rkmpp':
      // Rockchip's encoders (a patched ffmpeg) take nv12 from system memory.
      return { engine, global: [], input: [], filters: [...sw, 'format=nv12'] };
  }
}

/**
 * The one-frame test encode detection runs for `use` and `codec`: the same device, chain and
 * encoder options a transcode gets (on a test picture, so without hardware decoding).
 */
export function testEncodeArgs(use: EngineUse, codec: HardwareCodec): string[] {
  const plan = hardwarePlan(use, { decodable: false, software: [] });
  return [
    '-hide_banner', '-loglevel', 'error', '-nostats',
    ...plan.global,
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=1',
    '-frames:v', '1', '-vf', plan.filters.join(','), ...encoderArgs(use.engine, codec, 'v'),
    '-f', 'null', '-',
  ];
}
