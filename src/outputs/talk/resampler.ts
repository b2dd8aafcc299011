// A streaming sample-rate converter for one mono channel: a polyphase FIR for the ratio
// out/in = L/M (reduced), its prototype a Kaiser-windowed sinc at the lower of the two Nyquist
// frequencies (times `rolloff`), so that downsampling does not alias and upsampling leaves no
// images. Chunks of any size go in; what comes out is a view of an internal buffer, valid until
// the next call. Nothing is allocated per sample, nor per call once the buffers have grown to
// the largest chunk seen.

export interface ResamplerOptions {
  /** Zero crossings of the sinc on each side, at the lower rate: the filter's sharpness (default 16). */
  zeroCrossings?: number;
  /** Cutoff as a fraction of the lower Nyquist frequency (default 0.9). */
  rolloff?: number;
  /** Kaiser window β: the stopband depth (default 8.6, about 90 dB). */
  beta?: number;
}

/** Phases above this mean rates with almost no common divisor (44100 ↔ 47999): refused. */
const MAX_PHASES = 4096;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (series), for the Kaiser window. */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export class Resampler {
  readonly inRate: number;
  readonly outRate: number;
  readonly #up: number;
  readonly #down: number;
  /** Taps per phase. */
  readonly #taps: number;
  /** Phase-major coefficients: phase p's taps at [p * taps, (p + 1) * taps), newest sample first. */
  readonly #coeffs: Float32Array;
  /** Input history then new input; `#len` valid samples. */
  #in: Float32Array;
  #len = 0;
  /** Index in `#in` of the newest sample the next output needs; its phase. */
  #at = 0;
  #phase = 0;
  #out = new Float32Array(0);

  constructor(inRate: number, outRate: number, options: ResamplerOptions = {}) {
    if (!(Number.isInteger(inRate) && inRate > 0 && Number.isInteger(outRate) && outRate > 0)) throw new RangeError(`resampler: rates must be positive integers, got ${inRate} → ${outRate}`);
    const g = gcd(inRate, outRate);
    const up = outRate / g;
    const down = inRate / g;
    if (up > MAX_PHASES) throw new RangeError(`resampler: ${inRate} → ${outRate} Hz needs ${up} filter phases (at most ${MAX_PHASES})`);
    this.inRate = inRate;
    this.outRate = outRate;
    this.#up = up;
    this.#down = down;
    const zeroCrossings = options.zeroCrossings ?? 16;
    const rolloff = options.rolloff ?? 0.9;
    const beta = options.beta ?? 8.6;
    // At the upsampled rate (up × inRate), the cutoff in cycles per sample, and the taps that
    // span `zeroCrossings` periods of the lower rate each side.
    const cutoff = (rolloff * 0.5) / Math.max(up, down);
    const taps = Math.max(1, Math.ceil((2 * zeroCrossings * Math.max(up, down)) / up));
    const length = taps * up;
    const centre = (length - 1) / 2;
    const proto = new Float64Array(length);
    const i0beta = besselI0(beta);
    for (let k = 0; k < length; k++) {
      const x = k - centre;
      const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
      const r = (2 * k) / (length - 1) - 1;
      proto[k] = sinc * (besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0beta);
    }
    // Each phase sums to 1 (unity gain at DC, no ripple between phases).
    this.#taps = taps;
    this.#coeffs = new Float32Array(length);
    for (let p = 0; p < up; p++) {
      let sum = 0;
      for (let j = 0; j < taps; j++) sum += proto[p + j * up]!;
      for (let j = 0; j < taps; j++) this.#coeffs[p * taps + j] = proto[p + j * up]! / sum;
    }
    this.#in = new Float32Array(taps - 1 + 1024);
    this.reset();
  }

  /** Output samples per input sample. */
  get ratio(): number {
    return this.#up / this.#down;
  }

  /** Forgets the history (after a gap): the next input starts from silence. */
  reset(): void {
    this.#in.fill(0, 0, this.#taps - 1);
    this.#len = this.#taps - 1;
    this.#at = this.#taps - 1;
    this.#phase = 0;
  }

  /** Converts a chunk; the result is a view, overwritten by the next call. */
  process(input: ArrayLike<number>): Float32Array {
    const taps = this.#taps;
    if (this.#len + input.length > this.#in.length) {
      const grown = new Float32Array(this.#len + input.length + 1024);
      grown.set(this.#in.subarray(0, this.#len));
      this.#in = grown;
    }
    const buf = this.#in;
    for (let i = 0; i < input.length; i++) buf[this.#len + i] = input[i]!;
    this.#len += input.length;
    const most = Math.ceil(((this.#len - this.#at) * this.#up) / this.#down) + 1;
    if (this.#out.length < most) this.#out = new Float32Array(most + 256);
    const out = this.#out;
    const coeffs = this.#coeffs;
    let n = 0;
    let at = this.#at;
    let phase = this.#phase;
    while (at < this.#len) {
      const c = phase * taps;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += coeffs[c + j]! * buf[at - j]!;
      out[n++] = acc;
      phase += this.#down;
      at += Math.floor(phase / this.#up);
      phase %= this.#up;
    }
    // Keep the taps - 1 samples before the next one needed.
    const drop = Math.min(at - (taps - 1), this.#len);
    if (drop > 0) {
      buf.copyWithin(0, drop, this.#len);
      this.#len -= drop;
      at -= drop;
    }
    this.#at = at;
    this.#phase = phase;
    return out.subarray(0, n);
  }
}
