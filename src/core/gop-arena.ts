// Memory for the copies one GopCache holds: chunks written from the start at each keyframe.
// Reusing them costs one copy of the camera's bytes (a few hundred kB/s) and spares the process
// an allocation per frame that only a full garbage collection would give back.

/** Large enough that most frames share a chunk; at or above glibc's mmap threshold (128 KiB), so a chunk let go is returned to the system. */
const CHUNK_BYTES = 256 * 1024;

export class GopArena {
  #chunks: Buffer[] = [];
  /** The chunk being written and the next free byte in it. */
  #chunk = 0;
  #offset = 0;

  /**
   * Starts over at the first chunk: every view handed out before is overwritten from here on.
   * Chunks the GOP just ended did not reach (one spare kept) are let go, so that memory held after
   * one large GOP goes back.
   */
  reset(): void {
    if (this.#chunks.length > this.#chunk + 2) this.#chunks.length = this.#chunk + 2;
    this.#chunk = 0;
    this.#offset = 0;
  }

  /** A copy of `d`, valid until the next reset(). */
  copy(d: Buffer): Buffer {
    let c = this.#chunks[this.#chunk];
    if (c && this.#offset + d.length > c.length && this.#offset > 0) {
      this.#chunk++;
      this.#offset = 0;
      c = this.#chunks[this.#chunk];
    }
    if (!c || d.length > c.length) {
      c = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, d.length));
      this.#chunks[this.#chunk] = c;
    }
    const v = c.subarray(this.#offset, this.#offset + d.length);
    v.set(d);
    this.#offset += d.length;
    return v;
  }

  /** Bytes of the chunks held. */
  get capacity(): number {
    let n = 0;
    for (const c of this.#chunks) n += c.length;
    return n;
  }
}
