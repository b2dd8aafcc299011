// Memory for the copies one GopCache holds: chunks written from the start at each keyframe.
// Reusing them costs one copy of the camera's bytes (a few hundred kB/s) and spares the process
// an allocation per frame that only a full garbage collection would give back.

/**
 * Several delta frames of a 1080p camera to a chunk; a frame larger than this (a keyframe) gets a
 * chunk of its own, rounded up to a multiple of it. At glibc's mmap threshold (128 KiB with
 * npm start's MALLOC_TRIM_THRESHOLD_), so a chunk let go goes back to the system whole instead of
 * sitting in malloc's main arena between shorter-lived allocations.
 */
const CHUNK_BYTES = 128 * 1024;

export class GopArena {
  #chunks: Buffer[] = [];
  /** The chunk being written and the next free byte in it. */
  #chunk = 0;
  #offset = 0;

  /**
   * Starts over at the first chunk: every view handed out before is overwritten from here on.
   * Chunks the GOP just ended did not reach are let go once they hold more than it used, so that
   * memory held after one large GOP goes back, but a GOP a chunk shorter than the last does not
   * free one that the next allocates again.
   */
  reset(): void {
    let used = this.#offset;
    for (let i = 0; i < this.#chunk; i++) used += this.#chunks[i]!.length;
    if (this.capacity > 2 * used + CHUNK_BYTES) this.#chunks.length = this.#chunk + 1;
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
      c = Buffer.allocUnsafeSlow(Math.ceil(Math.max(d.length, 1) / CHUNK_BYTES) * CHUNK_BYTES);
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
