// Network cameras that are not RTSP, on loopback: an MJPEG-over-HTTP camera (a small Node server
// streaming multipart/x-mixed-replace JPEG frames that ffmpeg made at test time) and an RTMP
// camera (ffmpeg's own `-listen 1` RTMP server serving a test pattern with AAC audio).
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { netRows } from './proc-sockets.js';
import { waitFor } from './wait.js';

/** `count` JPEG frames of testsrc at `size`, each a whole JFIF image. */
export async function encodeJpegFrames(size = '320x180', count = 10): Promise<Buffer[]> {
  const data = await new Promise<Buffer>((resolve, reject) => {
    const p = spawn('/usr/bin/ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=10`, '-frames:v', String(count), '-c:v', 'mjpeg', '-q:v', '5', '-f', 'image2pipe', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg exited ${code}`))));
  });
  // Entropy-coded data stuffs every 0xFF with 0x00, so FF D9 only ends an image.
  const frames: Buffer[] = [];
  for (let start = data.indexOf(Buffer.from([0xff, 0xd8])); start >= 0 && frames.length < count; ) {
    const end = data.indexOf(Buffer.from([0xff, 0xd9]), start + 2);
    if (end < 0) break;
    frames.push(data.subarray(start, end + 2));
    start = data.indexOf(Buffer.from([0xff, 0xd8]), end + 2);
  }
  if (frames.length === 0) throw new Error('ffmpeg made no JPEG frames');
  return frames;
}

export class MjpegHttpCamera {
  readonly server: http.Server;
  port = 0;
  /** Requests for the stream path, in order. */
  requests = 0;
  #timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly frames: Buffer[],
    readonly path: string,
    fps: number,
  ) {
    this.server = http.createServer((req, res) => {
      if (req.url !== path) {
        res.writeHead(404).end();
        return;
      }
      this.requests++;
      res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=camframe', 'Cache-Control': 'no-cache' });
      let i = 0;
      const timer = setInterval(() => {
        const jpeg = this.frames[i++ % this.frames.length]!;
        res.write(`--camframe\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
        res.write(jpeg);
        res.write('\r\n');
      }, 1000 / fps);
      this.#timers.add(timer);
      res.once('close', () => {
        clearInterval(timer);
        this.#timers.delete(timer);
      });
    });
  }

  static async start(opts: { size?: string; fps?: number; path?: string } = {}): Promise<MjpegHttpCamera> {
    const c = new MjpegHttpCamera(await encodeJpegFrames(opts.size), opts.path ?? '/video.mjpg', opts.fps ?? 10);
    await new Promise<void>((r) => c.server.listen(0, '127.0.0.1', r));
    c.port = (c.server.address() as net.AddressInfo).port;
    return c;
  }

  url(): string {
    return `http://127.0.0.1:${this.port}${this.path}`;
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** A free loopback TCP port (bound, read, released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * ffmpeg as an RTMP server: it waits for one player, then sends H.264 + AAC (FLV) of a test
 * pattern until that player leaves, and exits.
 */
export class RtmpCamera {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly exited: Promise<number | null>,
  ) {}

  static async start(opts: { size?: string } = {}): Promise<RtmpCamera> {
    const port = await freePort();
    const args = ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', `testsrc=size=${opts.size ?? '320x180'}:rate=15`, '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '15', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
      '-f', 'flv', '-listen', '1', `rtmp://127.0.0.1:${port}/live/cam`];
    const child = spawn('/usr/bin/ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const cam = new RtmpCamera(child, port, exited);
    // Not by connecting: ffmpeg's listener takes the first connection as its one player.
    const hexPort = ':' + port.toString(16).toUpperCase().padStart(4, '0');
    await waitFor('ffmpeg listens for RTMP', () => netRows(child.pid!, 'tcp').some((r) => r[1]?.endsWith(hexPort) && r[3] === '0A'), 10000);
    return cam;
  }

  url(): string {
    return `rtmp://127.0.0.1:${this.port}/live/cam`;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * An HLS camera: ffmpeg writes a live playlist of one-second H.264 + AAC segments into a temporary
 * directory, and a loopback HTTP server serves that directory.
 */
export class HlsCamera {
  private constructor(
    readonly child: ChildProcess,
    readonly server: http.Server,
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<HlsCamera> {
    const { mkdtempSync, readFile } = await import('node:fs').then((m) => ({ mkdtempSync: m.mkdtempSync, readFile: m.promises.readFile }));
    const { tmpdir } = await import('node:os');
    const { join, basename } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'camrelay-hlscam-'));
    const args = ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=15', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '15', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '4', '-hls_flags', 'delete_segments', join(dir, 'live.m3u8')];
    const child = spawn('/usr/bin/ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const server = http.createServer((req, res) => {
      const name = basename(new URL(req.url ?? '/', 'http://x').pathname);
      readFile(join(dir, name)).then(
        (body) => res.writeHead(200, { 'Content-Type': name.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const cam = new HlsCamera(child, server, dir, (server.address() as net.AddressInfo).port);
    const { existsSync } = await import('node:fs');
    await waitFor('the first HLS segments are written', () => existsSync(join(dir, 'live.m3u8')), 15000);
    return cam;
  }

  url(): string {
    return `http://127.0.0.1:${this.port}/live.m3u8`;
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => (this.child.exitCode !== null || this.child.signalCode !== null ? r(undefined) : this.child.once('exit', r)));
    this.child.kill('SIGKILL');
    await exited;
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    const { rmSync } = await import('node:fs');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
