// ISO BMFF box writing (ISO/IEC 14496-12 4.2): a box is its 32-bit size, its 4-character type
// and its body; a full box adds a version byte and 24 bits of flags. Bodies are built from
// Buffers, so a box is written once with its size known.

export function box(type: string, ...body: Buffer[]): Buffer {
  let size = 8;
  for (const b of body) size += b.length;
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32BE(size, 0);
  head.write(type, 4, 4, 'latin1');
  return Buffer.concat([head, ...body], size);
}

export function fullBox(type: string, version: number, flags: number, ...body: Buffer[]): Buffer {
  const vf = Buffer.allocUnsafe(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, vf, ...body);
}

export function u8(...v: number[]): Buffer {
  return Buffer.from(v.map((x) => x & 0xff));
}

export function u16(...v: number[]): Buffer {
  const b = Buffer.allocUnsafe(2 * v.length);
  v.forEach((x, i) => b.writeUInt16BE(x & 0xffff, 2 * i));
  return b;
}

export function u32(...v: number[]): Buffer {
  const b = Buffer.allocUnsafe(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
}

export function zeros(n: number): Buffer {
  return Buffer.alloc(n);
}

/** The unity matrix of mvhd and tkhd (14496-12 8.2.2). */
export const UNITY_MATRIX = u32(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000);
