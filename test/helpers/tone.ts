// Tone checks on decoded audio: the power at a few frequencies (Goertzel), and an assertion that
// one of them dominates the others. For unit tests of the audio path and for integration tests
// that check what a test camera received (PCM from ffmpeg or from src/codecs/g711.ts).
import assert from 'node:assert/strict';

/**
 * Power of `samples` at `frequency` (Goertzel over [start, end)), normalized so that a sine of
 * amplitude A gives about A²/4 whatever the length: comparable across lengths and rates.
 */
export function goertzelPower(samples: ArrayLike<number>, sampleRate: number, frequency: number, start = 0, end = samples.length): number {
  const n = end - start;
  if (n <= 0) return 0;
  const coeff = 2 * Math.cos((2 * Math.PI * frequency) / sampleRate);
  let s1 = 0;
  let s2 = 0;
  for (let i = start; i < end; i++) {
    const s0 = samples[i]! + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n);
}

/** Root mean square of the samples in [start, end). */
export function rms(samples: ArrayLike<number>, start = 0, end = samples.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += samples[i]! * samples[i]!;
  return end > start ? Math.sqrt(sum / (end - start)) : 0;
}

export interface ToneReport {
  /** Power at the tone, and at each other frequency checked. */
  power: number;
  others: Record<number, number>;
  /** Power at the tone over the strongest other (Infinity when they are all 0). */
  ratio: number;
}

/** The tone's power against that at `others`, over [start, end). */
export function toneReport(samples: ArrayLike<number>, sampleRate: number, frequency: number, others: readonly number[], start = 0, end = samples.length): ToneReport {
  const power = goertzelPower(samples, sampleRate, frequency, start, end);
  const o: Record<number, number> = {};
  let strongest = 0;
  for (const f of others) {
    o[f] = goertzelPower(samples, sampleRate, f, start, end);
    strongest = Math.max(strongest, o[f]);
  }
  return { power, others: o, ratio: strongest === 0 ? Infinity : power / strongest };
}

export interface ToneExpectation {
  frequency: number;
  sampleRate: number;
  /** Frequencies that must be far weaker (default 440, 2000 and 3000 Hz, those under Nyquist). */
  others?: readonly number[];
  /** Minimum power ratio of the tone over the strongest other (default 100, i.e. 20 dB). */
  minRatio?: number;
  /** Minimum RMS, in the samples' unit (default 0: not checked); catches near-silence. */
  minRms?: number;
  /** Samples left out at the start (decoder and filter warm-up) and the end. */
  skip?: number;
}

/** Asserts that `frequency` dominates the audio; returns the report for more checks. */
export function assertTone(samples: ArrayLike<number>, e: ToneExpectation): ToneReport {
  const skip = e.skip ?? 0;
  const start = Math.min(skip, samples.length);
  const end = Math.max(start, samples.length - skip);
  assert.ok(end - start >= e.sampleRate / 50, `only ${end - start} samples to check a tone on`);
  const others = (e.others ?? [440, 2000, 3000]).filter((f) => f < e.sampleRate / 2 && f !== e.frequency);
  const report = toneReport(samples, e.sampleRate, e.frequency, others, start, end);
  const level = rms(samples, start, end);
  const detail = `${e.frequency} Hz: ${report.power.toExponential(2)}; ${others.map((f) => `${f} Hz: ${report.others[f]!.toExponential(2)}`).join(', ')}; rms ${level.toFixed(1)}`;
  assert.ok(report.ratio >= (e.minRatio ?? 100), `the tone does not dominate (ratio ${report.ratio.toFixed(1)}): ${detail}`);
  if (e.minRms !== undefined) assert.ok(level >= e.minRms, `too quiet: ${detail}`);
  return report;
}
