// Seeded byte-level mutation shared by the fuzz tests of the RTSP client (what cameras send) and
// of the RTSP server (what players and publishers send). Deterministic for a seed, so a failing
// run replays with the same FUZZ_SEED.

/** mulberry32: small, fast, good enough to pick mutations reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0x00, 0x01, 0x0a, 0x0d, 0x20, 0x24, 0x2c, 0x3a, 0x3b, 0x3d, 0x7f, 0x80, 0xff, 0x30, 0x39];

/** Picks from a seeded PRNG, and the byte edits every fuzzed format starts from. */
export class ByteMutator {
  constructor(readonly rand: () => number) {}

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** 1 to 4 byte-level edits. */
  bytes(input: Buffer, corpus: readonly Buffer[]): Buffer {
    let b = Buffer.from(input);
    for (let n = 1 + this.int(4); n > 0; n--) {
      const at = this.int(b.length + 1);
      switch (this.int(9)) {
        case 0: // flip a bit
          if (b.length) b[at % b.length]! ^= 1 << this.int(8);
          break;
        case 1: // random byte
          if (b.length) b[at % b.length] = this.int(256);
          break;
        case 2: // interesting byte
          if (b.length) b[at % b.length] = this.pick(INTERESTING);
          break;
        case 3: // insert random bytes
          b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + this.int(8) }, () => this.int(256))), b.subarray(at)]);
          break;
        case 4: // delete a range
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + this.int(16))]);
          break;
        case 5: // duplicate a range
          b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + this.int(64)), b.subarray(at)]);
          break;
        case 6: // truncate
          b = b.subarray(0, at);
          break;
        case 7: {
          // splice in part of another input
          const o = this.pick(corpus);
          const from = this.int(o.length + 1);
          b = Buffer.concat([b.subarray(0, at), o.subarray(from, from + 1 + this.int(64)), b.subarray(at)]);
          break;
        }
        default: {
          // a large or odd number where a digit was
          const s = b.toString('latin1');
          const m = /\d+/g;
          const hits = [...s.matchAll(m)];
          if (hits.length) {
            const h = this.pick(hits);
            const rep = this.pick(['0', '-1', '65535', '65536', '4294967296', '99999999999999999999', '1e9', 'NaN', '']);
            b = Buffer.from(s.slice(0, h.index) + rep + s.slice(h.index! + h[0].length), 'latin1');
          }
        }
      }
    }
    return b;
  }
}
