// G.711 against ffmpeg's own pcm_alaw/pcm_mulaw, byte for byte: every 16-bit value, a sweep and
// noise encoded; every code decoded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alawToLinear,
  g711Decode,
  g711Encode,
  linearToAlaw,
  linearToUlaw,
  ulawToLinear,
  type G711Codec,
} from '../../src/codecs/g711.js';

const FORMAT: Record<G711Codec, string> = { PCMA: 'alaw', PCMU: 'mulaw' };

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args]);
}

/** Every 16-bit value in order, then a full-scale sweep, then uniform noise (a fixed seed). */
function testSignal(): Int16Array {
  const all = 65536;
  const sweep = 8000 * 2;
  const noise = 8000 * 2;
  const pcm = new Int16Array(all + sweep + noise);
  for (let i = 0; i < all; i++) pcm[i] = i - 32768;
  for (let i = 0; i < sweep; i++) {
    const t = i / 8000;
    pcm[all + i] = Math.round(32767 * Math.sin(2 * Math.PI * (50 * t + 900 * t * t)));
  }
  let seed = 0x2545f491;
  for (let i = 0; i < noise; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    pcm[all + sweep + i] = (seed >>> 16) - 32768;
  }
  return pcm;
}

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'g711-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return `index ${i}: ${a[i]} vs ${b[i]}`;
  return `lengths ${a.length} vs ${b.length}`;
}

for (const codec of ['PCMA', 'PCMU'] as const) {
  test(`${codec}: encoding matches ffmpeg's ${FORMAT[codec]} encoder on every 16-bit value, a sweep and noise`, { timeout: 30_000 }, () => {
    const pcm = testSignal();
    const ours = g711Encode(codec, pcm);
    const theirs = withTempDir((dir) => {
      writeFileSync(join(dir, 'in.raw'), new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
      ffmpeg(['-f', 's16le', '-ar', '8000', '-ac', '1', '-i', join(dir, 'in.raw'), '-f', FORMAT[codec], join(dir, 'out.raw')]);
      return readFileSync(join(dir, 'out.raw'));
    });
    assert.equal(ours.length, theirs.length);
    assert.ok(Buffer.from(ours.buffer, ours.byteOffset, ours.length).equals(theirs), `first difference at ${firstDifference(ours, theirs)}`);
    const single = codec === 'PCMA' ? linearToAlaw : linearToUlaw;
    for (let i = 0; i < pcm.length; i += 97) assert.equal(single(pcm[i]!), theirs[i], `single-sample encoder at ${pcm[i]}`);
  });

  test(`${codec}: decoding matches ffmpeg's ${FORMAT[codec]} decoder on every code`, { timeout: 30_000 }, () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const ours = g711Decode(codec, codes);
    const theirs = withTempDir((dir) => {
      writeFileSync(join(dir, 'in.raw'), codes);
      ffmpeg(['-f', FORMAT[codec], '-ar', '8000', '-ac', '1', '-i', join(dir, 'in.raw'), '-f', 's16le', join(dir, 'out.raw')]);
      const raw = readFileSync(join(dir, 'out.raw'));
      return new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    });
    assert.deepEqual([...ours], [...theirs], `first difference at ${firstDifference(ours, theirs)}`);
    const single = codec === 'PCMA' ? alawToLinear : ulawToLinear;
    for (let c = 0; c < 256; c++) assert.equal(single(c), theirs[c]);
  });

  test(`${codec}: a decoded code encodes back to itself, and out-of-range input clamps`, { timeout: 5000 }, () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const back = g711Encode(codec, g711Decode(codec, codes));
    const encode = codec === 'PCMA' ? linearToAlaw : linearToUlaw;
    for (let c = 0; c < 256; c++) {
      // µ-law has two codes for zero (0x7f and 0xff); both decode to 0, which encodes as 0xff.
      if (codec === 'PCMU' && c === 0x7f) assert.equal(back[c], 0xff);
      else assert.equal(back[c], c, `code ${c}`);
    }
    assert.equal(encode(1e6), encode(32767));
    assert.equal(encode(-1e6), encode(-32768));
  });
}

test('g711Encode and g711Decode write into a given array and refuse a short one', { timeout: 5000 }, () => {
  const out = new Uint8Array(4);
  assert.equal(g711Encode('PCMA', Int16Array.of(0, 1000, -1000), out), out);
  assert.throws(() => g711Encode('PCMU', new Int16Array(5), out), RangeError);
  assert.throws(() => g711Decode('PCMU', new Uint8Array(5), new Int16Array(4)), RangeError);
});
