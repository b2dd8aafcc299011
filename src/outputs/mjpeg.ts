// Multipart MJPEG over HTTP (Home Assistant's MJPEG camera, simple players): the shared
// encoder's JPEGs (mjpeg-hub.ts), framed exactly as ffmpeg's mpjpeg muxer framed them when each
// viewer had its own ffmpeg, so clients see the same bytes as before.
import type { ServerResponse } from 'node:http';
import type { JpegSink } from './mjpeg-hub.js';

export const MJPEG_BOUNDARY = 'frame';
// mpjpeg's own spelling (lower-case "type"/"length"), and its boundary after every part.
const OPENING = Buffer.from(`--${MJPEG_BOUNDARY}\r\n`);
const PART_END = Buffer.from(`\r\n--${MJPEG_BOUNDARY}\r\n`);
const partHead = (n: number): string => `Content-type: image/jpeg\r\nContent-length: ${n}\r\n\r\n`;

/** One viewer's response: its headers are the route's, set before the first part goes out with them. */
export class MultipartJpegSink implements JpegSink {
  #opened = false;

  constructor(private readonly res: ServerResponse) {}

  get buffered(): number {
    return this.res.writableLength;
  }

  open(): void {}

  write(jpeg: Buffer): void {
    const res = this.res;
    if (res.destroyed || res.writableEnded) return;
    // One chunk per picture on the wire, the JPEG itself not copied.
    res.cork();
    if (!this.#opened) {
      this.#opened = true;
      res.write(OPENING);
    }
    res.write(partHead(jpeg.length));
    res.write(jpeg);
    res.write(PART_END);
    res.uncork();
  }

  end(): void {
    if (!this.res.writableEnded) this.res.destroy();
  }
}
