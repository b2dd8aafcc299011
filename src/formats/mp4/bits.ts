// Reading H.264/H.265 parameter sets: the RBSP (emulation prevention bytes removed) read bit by
// bit, with Exp-Golomb codes (H.264 7.2, 9.1).

/** The NAL unit's payload without its emulation prevention bytes (00 00 03 → 00 00). */
export function rbsp(nal: Buffer): Buffer {
  const out = Buffer.allocUnsafe(nal.length);
  let n = 0;
  let zeros = 0;
  for (const b of nal) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, n);
}

export class BitReader {
  #pos = 0;
  constructor(
    private readonly buf: Buffer,
    startByte = 0,
  ) {
    this.#pos = startByte * 8;
  }

  /** Throws RangeError past the end: a truncated set is not a set. */
  bit(): number {
    const byte = this.buf[this.#pos >> 3];
    if (byte === undefined) throw new RangeError('parameter set truncated');
    const v = (byte >> (7 - (this.#pos & 7))) & 1;
    this.#pos++;
    return v;
  }

  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  skip(n: number): void {
    this.#pos += n;
  }

  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      if (++zeros > 31) throw new RangeError('Exp-Golomb code too long');
    }
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}
