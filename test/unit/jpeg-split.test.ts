import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JpegSplitError, JpegSplitter } from '../../src/outputs/jpeg-split.js';

const seg = (marker: number, body: number[]): number[] => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];

/**
 * A JPEG built to trip a naive splitter: an 0xFFD9 inside a table and a comment, stuffed bytes,
 * restart markers and fill bytes in the scan, two scans. `tag` makes images tell apart.
 */
function image(tag: number): Buffer {
  return Buffer.from([
    0xff, 0xd8,
    ...seg(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 0xff, 0xd9, tag]),
    ...seg(0xdb, [0x00, 0xff, 0xd9, 0xff, 0xd8, 0x01]),
    ...seg(0xda, [0x01, 0x01, 0x00, 0x00, 0x3f, 0x00]),
    tag, 0xff, 0x00, 0x12, 0xff, 0xd0, 0x34, 0xff, 0x00, 0xff, 0xd7, 0x56,
    ...seg(0xda, [0x01, 0x01, 0x00, 0x00, 0x3f, 0x00]),
    0x78, 0xff, 0x00,
    0xff, 0xff, 0xd9,
  ]);
}

test('cuts concatenated JPEGs at their real ends, wherever the chunks fall', { timeout: 5000 }, () => {
  const images = [image(1), image(2), image(3)];
  const all = Buffer.concat([Buffer.from([0x00, 0x11]), ...images]);
  for (let cut1 = 0; cut1 <= all.length; cut1++) {
    for (const step of [1, 2, 7]) {
      const s = new JpegSplitter(1 << 20);
      const got: Buffer[] = [];
      got.push(...s.push(all.subarray(0, cut1)));
      for (let i = cut1; i < all.length; i += step) got.push(...s.push(all.subarray(i, Math.min(all.length, i + step))));
      assert.deepEqual(got.map((b) => b.toString('hex')), images.map((b) => b.toString('hex')), `cut at ${cut1}, step ${step}`);
    }
  }
});

test('an image that never ends is bounded; a broken marker stream is an error', { timeout: 5000 }, () => {
  const s = new JpegSplitter(100);
  const head = image(1).subarray(0, 40);
  assert.deepEqual(s.push(head), []);
  assert.throws(() => s.push(Buffer.alloc(100, 0x11)), JpegSplitError);
  const bad = new JpegSplitter(1000);
  assert.throws(() => bad.push(Buffer.from([0xff, 0xd8, 0x12, 0x34, 0x56])), JpegSplitError);
  // Garbage with no start of image is dropped, not held.
  const junk = new JpegSplitter(10);
  for (let i = 0; i < 5; i++) assert.deepEqual(junk.push(Buffer.alloc(8, 0x22)), []);
  assert.deepEqual(junk.push(image(4)).length, 1);
});
