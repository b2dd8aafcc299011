// Parameter sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS) in front of a keyframe: a decoder cannot
// start without them, and a viewer that joins at a keyframe has seen nothing before it.

/**
 * `head` followed by the NAL units of `nals` that `drop` keeps, or `nals` itself when it already
 * is exactly that (a keyframe that has been through here once).
 */
export function setsFirst<A extends readonly Buffer[]>(nals: A, head: readonly Buffer[], drop: (nal: Buffer) => boolean): A | Buffer[] {
  const rest = nals.filter((n) => !drop(n));
  const same = head.length + rest.length === nals.length && head.every((h, i) => nals[i] === h) && rest.every((r, i) => nals[head.length + i] === r);
  return same ? nals : [...head, ...rest];
}
