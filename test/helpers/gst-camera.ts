// A real RTSP camera for tests: gst-rtsp-server.py (GStreamer's RTSP server through Python GI) as a
// child process. It reports every client connection and request as a JSON line, so tests can
// assert what the camera saw (TEARDOWN, the number of connections, UDP or TCP transport).
// With `backchannel` it is an ONVIF camera with an audio backchannel, whose decoded audio tests read.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const SCRIPT = path.join(import.meta.dirname, 'gst-rtsp-server.py');

/**
 * 'h264-file' serves `file` (H.264 Annex B) in a loop without encoding: the benchmarks' camera;
 * 'h265-file' the same for an H.265 Annex B file (the transcode benchmark's camera).
 */
export type CameraPipeline = 'h264' | 'h264-aac' | 'h264-pcma' | 'h265' | 'h265-aac' | 'h265-pcma' | 'h264-file' | 'h265-file';

export interface GstCameraOptions {
  pipeline?: CameraPipeline;
  /** Default '/cam'. */
  mount?: string;
  auth?: { method: 'basic' | 'digest'; user: string; password: string };
  /** Session timeout the camera announces (s); gst's default is 60. */
  sessionTimeout?: number;
  /** Default 0: a free port chosen by the camera (kept across restart()). */
  port?: number;
  /** For pipelines 'h264-file' and 'h265-file': the Annex B file, and its frame rate (default 25). */
  file?: string;
  fps?: number;
  /**
   * Default 1. With n > 1 the one process serves n cameras of the same pipeline, at mounts
   * `${mount}1` … `${mount}n` (see mountUrl()), each with a media of its own.
   */
  mounts?: number;
  /**
   * An ONVIF audio backchannel of this codec (PCMA: PT 8, PCMU: PT 0, 8 kHz; AAC: PT 97,
   * MPEG4-GENERIC/16000/1 AAC-hbr with config=1408, decoded by faad and resampled to the same
   * 8 kHz file): a client whose
   * DESCRIBE (and SETUP) carries `Require: www.onvif.org/ver20/backchannel` gets one more audio
   * media, a=sendonly, and a media (pipeline) of its own; others get the normal, shared media and
   * SDP. What it receives is decoded into a file (backchannelAudio()) and counted
   * (backchannelPackets(), waitBackchannel()). GStreamer takes backchannel RTP only on a stream
   * SETUP before PLAY, and only of the SDP's payload type (others are dropped silently).
   */
  backchannel?: CameraBackchannel;
}

export type CameraBackchannel = 'pcma' | 'pcmu' | 'aac';

/** The GStreamer elements each backchannel decodes with. */
const BACKCHANNEL_ELEMENTS: Record<CameraBackchannel, string[]> = {
  pcma: ['rtppcmadepay', 'alawdec'],
  pcmu: ['rtppcmudepay', 'mulawdec'],
  aac: ['rtpmp4gdepay', 'aacparse', 'faad', 'audioresample'],
};

export interface CameraEvent {
  event: 'ready' | 'connected' | 'request' | 'closed' | 'error' | 'backchannel' | 'backchannel-end';
  client?: number;
  method?: string;
  uri?: string;
  transport?: string;
  /** A request's Require header, when it has one (an ONVIF backchannel: 'www.onvif.org/ver20/backchannel'). */
  require?: string;
  /**
   * 'backchannel' and 'backchannel-end': the camera process's totals so far, RTP packets that
   * reached the backchannel depayloader and bytes of decoded audio written (s16le, 8 kHz, mono).
   */
  packets?: number;
  bytes?: number;
  /** 'backchannel': payload type, SSRC and caps of the latest packet (caps as GStreamer saw them). */
  pt?: number;
  ssrc?: number;
  caps?: string;
  remote?: string;
  port?: number;
  message?: string;
}

/**
 * Whether GStreamer has the elements a pipeline needs (x265enc comes from plugins-bad), and
 * those of the backchannel when given (and the ONVIF classes of gst-rtsp-server, 1.14 on).
 */
export function cameraCanRun(pipeline: CameraPipeline, backchannel?: CameraBackchannel): boolean {
  const need =
    pipeline === 'h264-pcma' || pipeline === 'h265-pcma'
      ? [pipeline === 'h264-pcma' ? 'x264enc' : 'x265enc', 'alawenc', 'rtppcmapay']
      : pipeline === 'h265'
      ? ['x265enc', 'rtph265pay']
      : pipeline === 'h265-aac'
        ? ['x265enc', 'rtph265pay', 'voaacenc', 'rtpmp4gpay']
      : pipeline === 'h264-aac'
        ? ['x264enc', 'voaacenc', 'rtpmp4gpay']
        : pipeline === 'h264-file'
          ? ['appsrc', 'h264parse', 'rtph264pay']
        : pipeline === 'h265-file'
          ? ['appsrc', 'h265parse', 'rtph265pay']
          : ['x264enc'];
  if (backchannel) need.push(...BACKCHANNEL_ELEMENTS[backchannel], 'audioconvert', 'appsink');
  try {
    for (const e of need) execFileSync('gst-inspect-1.0', ['--exists', e], { stdio: 'ignore' });
    if (backchannel) {
      execFileSync('/usr/bin/python3', ['-c', "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer; GstRtspServer.RTSPOnvifMediaFactory.set_backchannel_launch"], { stdio: 'ignore' });
    }
    return true;
  } catch {
    return false;
  }
}

export class GstCamera {
  readonly events: CameraEvent[] = [];
  port = 0;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #listeners = new Set<(e: CameraEvent) => void>();
  #stderr = '';
  /** With `backchannel`: the directory of the audio file, this camera's own (gone at stop()). */
  #backchannelDir: string | undefined;

  private constructor(private readonly opts: GstCameraOptions) {
    this.port = opts.port ?? 0;
    if (opts.backchannel) this.#backchannelDir = mkdtempSync(path.join(tmpdir(), 'camrelay-gst-backchannel-'));
  }

  static async start(opts: GstCameraOptions = {}): Promise<GstCamera> {
    const cam = new GstCamera(opts);
    await cam.#spawn();
    return cam;
  }

  get mount(): string {
    return this.opts.mount ?? '/cam';
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The camera's URL, with user info when given (percent-encoded here). */
  url(creds?: { user: string; password: string }, suffix = ''): string {
    const ui = creds ? `${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@` : '';
    return `rtsp://${ui}127.0.0.1:${this.port}${this.mount}${suffix}`;
  }

  /** The URL of mount i (1 … mounts) of a camera started with `mounts` > 1. */
  mountUrl(i: number): string {
    const n = this.opts.mounts ?? 1;
    if (n === 1 || !Number.isInteger(i) || i < 1 || i > n) throw new Error(`camera: no mount ${i} (it serves ${n === 1 ? 'one mount, url()' : `1 … ${n}`})`);
    return `rtsp://127.0.0.1:${this.port}${this.mount}${i}`;
  }

  /** Requests the camera saw, optionally of one method. */
  requests(method?: string): CameraEvent[] {
    return this.events.filter((e) => e.event === 'request' && (method === undefined || e.method === method));
  }

  /** Client connections accepted so far. */
  connections(): number {
    return this.events.filter((e) => e.event === 'connected').length;
  }

  /** Client connections not yet closed. */
  openConnections(): number {
    return this.connections() - this.events.filter((e) => e.event === 'closed').length;
  }

  /** An event already seen (from index `from` on) or the next one matching, with a deadline. */
  waitEvent(match: (e: CameraEvent) => boolean, ms = 5000, from = 0): Promise<CameraEvent> {
    const seen = this.events.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#listeners.delete(f);
        reject(new Error(`camera: no matching event within ${ms} ms (last: ${JSON.stringify(this.events.slice(-3))})`));
      }, ms);
      const f = (e: CameraEvent) => {
        if (!match(e)) return;
        clearTimeout(t);
        this.#listeners.delete(f);
        resolve(e);
      };
      this.#listeners.add(f);
    });
  }

  /** With `backchannel`: the file the decoded backchannel audio is appended to (s16le, 8 kHz, mono). */
  get backchannelFile(): string | undefined {
    return this.#backchannelDir && path.join(this.#backchannelDir, 'backchannel.s16');
  }

  /**
   * Backchannel RTP packets that reached the camera's depayloader (of every client, and across
   * restart()), as of the camera's latest report: it reports a media's first packet at once, then
   * every 25 packets and once a second while the count changes.
   */
  backchannelPackets(): number {
    return this.#backchannelTotals().packets;
  }

  /** The decoded backchannel audio so far, s16le 8 kHz mono (empty before any arrived); read it before stop(). */
  backchannelAudio(): Buffer {
    const f = this.backchannelFile;
    if (!f) throw new Error('camera: started without a backchannel');
    try {
      return readFileSync(f);
    } catch {
      return Buffer.alloc(0);
    }
  }

  /**
   * Waits until `packets` backchannel RTP packets (default 1: "RTP arrived") have reached the
   * camera, or with `bytes`, until that much decoded audio was written to backchannelFile too.
   * Resolves with the report that got there: a 'backchannel' one (its pt, ssrc and caps are the
   * latest packet's), or the 'backchannel-end' of a media that went before the next report.
   */
  waitBackchannel(packets = 1, ms = 5000, bytes = 0): Promise<CameraEvent> {
    if (!this.opts.backchannel) return Promise.reject(new Error('camera: started without a backchannel'));
    return this.waitEvent((e) => {
      if (e.event !== 'backchannel' && e.event !== 'backchannel-end') return false;
      const t = this.#backchannelTotals(this.events.indexOf(e) + 1);
      return t.packets >= packets && t.bytes >= bytes;
    }, ms);
  }

  /** Totals of the events before `end`: each camera process counts from 0, so its last report is added per run. */
  #backchannelTotals(end = this.events.length): { packets: number; bytes: number } {
    let packets = 0;
    let bytes = 0;
    let run = { packets: 0, bytes: 0 };
    for (const e of this.events.slice(0, end)) {
      if (e.event === 'ready') {
        packets += run.packets;
        bytes += run.bytes;
        run = { packets: 0, bytes: 0 };
      } else if ((e.event === 'backchannel' || e.event === 'backchannel-end') && e.packets !== undefined) {
        run = { packets: e.packets, bytes: e.bytes ?? 0 };
      }
    }
    return { packets: packets + run.packets, bytes: bytes + run.bytes };
  }

  /** SIGSTOP: the camera keeps its sockets open but answers and sends nothing. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** SIGKILL, as a camera losing power: its connections are reset. */
  async kill(): Promise<void> {
    const c = this.#child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await this.#exited;
    c?.stdin?.destroy();
    this.#child = undefined;
  }

  /** Kills the camera (if running) and starts it again on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  /** Ends the camera (and removes its backchannel audio file); safe to call twice. */
  async stop(): Promise<void> {
    await this.kill();
    if (this.#backchannelDir) rmSync(this.#backchannelDir, { recursive: true, force: true });
  }

  async #spawn(): Promise<void> {
    const o = this.opts;
    const args = [SCRIPT, '--port', String(this.port), '--mount', this.mount, '--pipeline', o.pipeline ?? 'h264'];
    if (o.auth) args.push('--auth', o.auth.method, '--user', o.auth.user, '--password', o.auth.password);
    if (o.sessionTimeout) args.push('--session-timeout', String(o.sessionTimeout));
    if (o.file) args.push('--file', o.file);
    if (o.fps) args.push('--fps', String(o.fps));
    if (o.mounts && o.mounts > 1) args.push('--mounts', String(o.mounts));
    if (o.backchannel) args.push('--backchannel', o.backchannel, '--backchannel-out', this.backchannelFile!);
    // stdin stays open and unused: the camera exits when it closes, so it never outlives this process.
    const child = spawn('/usr/bin/python3', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr = (this.#stderr + d).slice(-4000)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let e: CameraEvent;
      try {
        e = JSON.parse(line) as CameraEvent;
      } catch {
        return;
      }
      this.events.push(e);
      for (const f of [...this.#listeners]) f(e);
    });
    const from = this.events.length;
    const failed = this.#exited.then(() => {
      throw new Error(`camera exited before it was ready: ${this.#stderr}`);
    });
    try {
      const ready = await Promise.race([this.waitEvent((e) => e.event === 'ready' || e.event === 'error', 15000, from), failed]);
      if (ready.event === 'error') throw new Error(`camera: ${ready.message}`);
      this.port = ready.port!;
    } catch (e) {
      await this.kill();
      throw e;
    } finally {
      failed.catch(() => {});
    }
  }
}
