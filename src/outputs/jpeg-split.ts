// ffmpeg's raw MJPEG output is JPEG images back to back, cut into pipe-sized chunks anywhere.
// Every viewer must get whole images (a WebSocket message is one picture: go2rtc's player shows
// each as a poster), so the chunks are cut again at the images' ends. The end is found by walking
// the marker segments by their lengths and the entropy-coded data by its byte stuffing, so an
// 0xFFD9 inside a table or a thumbnail cannot cut an image short.
const SOI = Buffer.from([0xff, 0xd8]);
const EMPTY = Buffer.alloc(0);

export class JpegSplitError extends Error {}

export class JpegSplitter {
  #buf: Buffer = EMPTY;
  /** Where parsing resumes in #buf; 0 while no start of image has been found. */
  #pos = 0;
  /** Inside entropy-coded data (after SOS), where only a non-stuffed marker ends the scan. */
  #inScan = false;

  /** `maxBytes`: the largest image (or garbage before one) held before giving up. */
  constructor(private readonly maxBytes: number) {}

  /** The images that `chunk` completed, in order. Throws JpegSplitError on a broken stream. */
  push(chunk: Buffer): Buffer[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Buffer[] = [];
    for (let end = this.#next(); end > 0; end = this.#next()) {
      out.push(this.#buf.subarray(0, end));
      this.#buf = this.#buf.subarray(end);
      this.#pos = 0;
      this.#inScan = false;
    }
    if (this.#buf.length > this.maxBytes) throw new JpegSplitError(`no end of image in ${this.#buf.length} bytes`);
    return out;
  }

  /** The end (exclusive) of the image at the start of #buf, or -1 when it is not complete yet. */
  #next(): number {
    if (this.#pos === 0 && !this.#findStart()) return -1;
    const b = this.#buf;
    let pos = this.#pos;
    for (;;) {
      if (this.#inScan) {
        // 0xFF00 is a stuffed data byte, 0xFFD0-D7 restart markers, 0xFFFF fill: none ends the scan.
        for (;;) {
          pos = b.indexOf(0xff, pos);
          if (pos < 0 || pos + 1 >= b.length) {
            this.#pos = pos < 0 ? b.length : pos;
            return -1;
          }
          const m = b[pos + 1]!;
          if (m === 0x00 || (m >= 0xd0 && m <= 0xd7)) pos += 2;
          else if (m === 0xff) pos += 1;
          else break;
        }
        this.#inScan = false;
      }
      this.#pos = pos;
      if (pos + 2 > b.length) return -1;
      if (b[pos] !== 0xff) throw new JpegSplitError(`no JPEG marker at byte ${pos} of an image`);
      const m = b[pos + 1]!;
      if (m === 0xd9) return pos + 2;
      if (m === 0xff) {
        pos += 1;
        continue;
      }
      if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
        pos += 2;
        continue;
      }
      if (pos + 4 > b.length) return -1;
      const end = pos + 2 + b.readUInt16BE(pos + 2);
      if (end > b.length) return -1;
      pos = end;
      if (m === 0xda) this.#inScan = true;
    }
  }

  /** Drops anything before the next start of image; false when there is none yet. */
  #findStart(): boolean {
    const at = this.#buf.indexOf(SOI);
    if (at < 0) {
      // A lone 0xFF at the end may be the first half of the next SOI.
      this.#buf = this.#buf.at(-1) === 0xff ? this.#buf.subarray(this.#buf.length - 1) : EMPTY;
      return false;
    }
    this.#buf = this.#buf.subarray(at);
    this.#pos = 2;
    return true;
  }
}
