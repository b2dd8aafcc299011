// http(s) and rtmp(s) cameras (plain `http://…` sources, and `ffmpeg:http://…` without #video or
// #audio, which is how Home Assistant hands over its generic cameras). They run through ffmpeg,
// copying what camrelay can serve and encoding only what it cannot: an MJPEG camera becomes
// H.264, an MP3 or PCM audio track Opus. AAC from MPEG-TS (HLS, TS over HTTP) is ADTS without
// the global header ffmpeg's RTSP muxer needs ("AAC with no global headers is currently not
// supported", also with -bsf:a aac_adtstoasc), so it is encoded to Opus too. What the camera sends
// is learnt with ffprobe right before ffmpeg starts (same protocol allow-list and I/O timeout),
// except for
//   - HLS playlists (.m3u8), which carry H.264/H.265 with AAC in MPEG-TS: video copied and audio
//     encoded to Opus without a probe (a probe would download a segment first);
//   - rtmp(s), whose FLV carries H.264 and AAC: copied without a probe (an RTMP server that
//     serves a single client, as `ffmpeg -listen 1` does, would be used up by the probe).
import { SourceError, errorMessage } from '../core/errors.js';
import { log, maskCredentials, type Logger } from '../core/log.js';
import type { Track } from '../core/media.js';
import { Owned } from '../core/owned.js';
import type { Source, SourceInfo } from '../core/source.js';
import { ChildProcessOwner } from '../process/child.js';
import { carriesAdts, HTTP_PROTOCOLS } from './ffmpeg-args.js';
import { unreachableLine } from './ffmpeg-failure.js';
import { parseFfmpegUrl, type FfmpegSourceSpec } from './ffmpeg-url.js';
import { FfmpegSource, type FfmpegContext } from './ffmpeg.js';

const PROBE_TIMEOUT_MS = 10_000;
/** Probe answers remembered per URL, so a camera restarted by backoff is not probed each time. */
const CACHE_MAX = 256;
const cache = new Map<string, string>();

// ffprobe codec names that camrelay serves as they are (the rest is encoded).
const COPY_VIDEO = new Set(['h264', 'hevc']);
const COPY_AUDIO = new Set(['aac', 'opus', 'pcm_alaw', 'pcm_mulaw']);

// Containers whose AAC carries its AudioSpecificConfig out of band (copyable into RTSP).
const GLOBAL_HEADER_FORMATS = /\b(flv|mov|mp4|matroska|webm)\b/;

/**
 * What an `ffmpeg:` source's codecs depend on: 'copy' (the command line as written), 'probe'
 * (an http input without #video/#audio: learn its codecs first), or fragments to add at once.
 */
export function codecPlan(spec: FfmpegSourceSpec): 'copy' | 'probe' | { fragments: string } {
  const input = spec.input;
  if (input.kind !== 'url' || input.protocol !== 'http') return 'copy';
  if (spec.video.length > 0 || spec.audio.length > 0) return 'copy';
  return carriesAdts(input) ? { fragments: '#video=copy#audio=opus' } : 'probe';
}

/** The fragments to add to a source for the codecs ffprobe found: '' when everything can be copied. */
export function codecFragments(video: string | undefined, audio: string | undefined, format = ''): string {
  const encodeVideo = video !== undefined && !COPY_VIDEO.has(video);
  const encodeAudio = audio !== undefined && (!COPY_AUDIO.has(audio) || (audio === 'aac' && !GLOBAL_HEADER_FORMATS.test(format)));
  if (!encodeVideo && !encodeAudio) return '';
  const v = video === undefined ? '' : encodeVideo ? '#video=h264' : '#video=copy';
  const a = audio === undefined ? '' : encodeAudio ? '#audio=opus' : '#audio=copy';
  return v + a;
}

/** ffprobe next to the configured ffmpeg (`/opt/ff/ffmpeg` → `/opt/ff/ffprobe`). */
export function ffprobeBin(ffmpegBin: string): string {
  return /ffmpeg(\.exe)?$/i.test(ffmpegBin) ? ffmpegBin.replace(/ffmpeg(\.exe)?$/i, 'ffprobe$1') : 'ffprobe';
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
}

/** The first video and audio codec of an http input, by ffprobe. Rejects with a SourceError. */
interface Probed {
  video?: string;
  audio?: string;
  format?: string;
}

async function probe(child: ChildProcessOwner, signal: AbortSignal, logger: Logger): Promise<Probed> {
  const chunks: Buffer[] = [];
  let size = 0;
  child.stdout?.on('data', (d: Buffer) => {
    // A few streams' worth of JSON; more is not an answer we want to hold.
    if ((size += d.length) <= 64 * 1024) chunks.push(d);
  });
  const stop = () => child.close();
  signal.addEventListener('abort', stop, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.close();
  }, PROBE_TIMEOUT_MS);
  try {
    const exit = await child.exited;
    const stderr = child.lastStderr();
    const tail = stderr.length ? `: ${stderr.slice(-3).join(' | ')}` : '';
    if (timedOut) throw new SourceError(maskCredentials(`ffprobe learnt nothing from the camera within ${PROBE_TIMEOUT_MS / 1000} s${tail}`));
    if (signal.aborted || child.closed) throw new SourceError('source stopped before it started');
    if (exit.error) throw new SourceError(`ffprobe could not run: ${exit.error.message}`, true);
    if (exit.code !== 0) {
      const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
      throw new SourceError(maskCredentials(`ffprobe ${how}${tail}`), false, unreachableLine(stderr) !== undefined);
    }
    let answer: { streams?: ProbeStream[]; format?: { format_name?: string } };
    try {
      answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof answer;
    } catch (e) {
      throw new SourceError(`ffprobe answered something that is not JSON: ${errorMessage(e)}`);
    }
    const streams = answer.streams ?? [];
    const found: Probed = {
      video: streams.find((s) => s.codec_type === 'video')?.codec_name,
      audio: streams.find((s) => s.codec_type === 'audio')?.codec_name,
      format: answer.format?.format_name,
    };
    logger.debug(found, 'probed http input');
    return found;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', stop);
    child.close();
    await child.done;
  }
}

/**
 * An `ffmpeg:` source over an http input whose codecs are learnt first (codecPlan 'probe'). start()
 * probes, then runs an FfmpegSource with the fragments the codecs call for; it owns that source.
 */
export class ProbedFfmpegSource extends Owned implements Source {
  #inner: FfmpegSource | undefined;
  /** ffprobe while start() waits for it: close() must end it and wait for it too. */
  #probe: ChildProcessOwner | undefined;
  #log: Logger;
  #input: string;

  constructor(
    readonly url: string,
    private readonly ctx: FfmpegContext,
    private readonly streamName: string,
    /** The ffmpeg: URL before the probe's fragments. */
    private readonly ffmpegUrl: string,
  ) {
    const spec = parseFfmpegUrl(ffmpegUrl, ctx.isStream);
    super('ProbedFfmpegSource');
    this.#input = spec.input.kind === 'url' ? spec.input.url : '';
    this.#log = log.child({ stream: streamName, source: 'ffmpeg' });
  }

  async start(signal: AbortSignal): Promise<Track[]> {
    if (this.closed || signal.aborted) throw new SourceError('source stopped before it started');
    let extra = cache.get(this.ffmpegUrl);
    if (extra === undefined) {
      const args = ['-hide_banner', '-v', 'error', '-protocol_whitelist', HTTP_PROTOCOLS, '-rw_timeout', '5000000', '-show_entries', 'stream=codec_type,codec_name:format=format_name', '-of', 'json', '-i', this.#input];
      const child = new ChildProcessOwner({ bin: ffprobeBin(this.ctx.bin), args, label: 'ffprobe', grace: this.ctx.grace, stdout: 'pipe' });
      this.#probe = child;
      let found: Probed;
      try {
        found = await probe(child, signal, this.#log);
      } finally {
        this.#probe = undefined;
      }
      extra = codecFragments(found.video, found.audio, found.format);
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
      cache.set(this.ffmpegUrl, extra);
    }
    if (this.closed || signal.aborted) throw new SourceError('source stopped before it started');
    if (extra) this.#log.info({ fragments: extra }, 'camera sends codecs camrelay cannot serve as they are: encoding them');
    const inner = new FfmpegSource(this.url, this.ctx, this.streamName, this.ffmpegUrl + extra);
    this.#inner = inner;
    inner.on('frame', (f) => {
      if (!this.closed) this.emit('frame', f);
    });
    inner.once('close', (err?: Error) => {
      if (err) this.close(err);
    });
    return inner.start(signal);
  }

  info(): SourceInfo {
    return this.#inner?.info() ?? { url: maskCredentials(this.url), type: 'ffmpeg' };
  }

  protected onClose(): Promise<void> {
    const owned = [this.#probe, this.#inner].filter((o): o is ChildProcessOwner | FfmpegSource => o !== undefined);
    for (const o of owned) o.close();
    return Promise.all(owned.map((o) => o.done)).then(() => undefined);
  }
}
