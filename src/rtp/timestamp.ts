/**
 * Turns 32-bit RTP timestamps into a monotonic number that keeps counting across the wrap
 * (at 90 kHz the wrap comes after 13 hours). Steps are taken as signed 32-bit differences, so a
 * timestamp slightly behind the last one (reordering) steps back instead of jumping ahead 2^32.
 */
export class TimestampUnwrapper {
  #last: number | undefined;
  #value = 0;

  unwrap(raw: number): number {
    if (this.#last === undefined) {
      this.#last = raw >>> 0;
      this.#value = this.#last;
      return this.#value;
    }
    const delta = ((raw - this.#last) | 0);
    this.#last = raw >>> 0;
    this.#value += delta;
    return this.#value;
  }
}
