// Cuts one HLS viewer's fMP4 bytes (the init segment, then one moof+mdat per sample, as the shared
// muxer's viewer writes them) into segments that start at a video keyframe, each about
// `targetSeconds` long or one GOP if the GOP is longer. It reads the few fields it needs from the
// boxes themselves (track timescales from the init, track, time and sync flag from each moof), so
// it needs nothing from the muxer beyond the bytes every viewer gets.

/** One finished segment: moof+mdat pairs, the mdat bytes shared with the muxer's other viewers. */
export interface Segment {
  seq: number;
  /** Seconds, on the segment's first track with samples (video when there is video). */
  duration: number;
  /** The init segment version it plays with (a change of parameter sets makes a new one). */
  initVersion: number;
  parts: Buffer[];
  bytes: number;
}

export interface SegmenterOptions {
  /** A segment ends at the first keyframe at least this long after its start. */
  targetSeconds: number;
  /** Finished segments kept (the playlist lists the newest of them). */
  keep: number;
}

interface Open {
  parts: Buffer[];
  bytes: number;
  /** Decode time of its first sample on the main track, in that track's ticks. */
  start: number | undefined;
  /** Where its last main-track sample ends, in the same ticks. */
  end: number | undefined;
}

/** The moof the viewer writes has a fixed layout (formats/mp4/fragment.ts): fields at fixed offsets. */
const MOOF_TRACK_ID = 44;
const MOOF_DURATION = 48;
const MOOF_FLAGS = 56;
const MOOF_DECODE_TIME = 72;
const NON_SYNC = 0x00010000;

const typeAt = (b: Buffer, o: number): string => b.toString('latin1', o + 4, o + 8);

/** Boxes of `b` from `from` to `to`: [type, start, end]. */
function* children(b: Buffer, from: number, to: number): Generator<[string, number, number]> {
  for (let o = from; o + 8 <= to; ) {
    const size = b.readUInt32BE(o);
    if (size < 8 || o + size > to) return;
    yield [typeAt(b, o), o, o + size];
    o += size;
  }
}

function child(b: Buffer, from: number, to: number, type: string): [number, number] | undefined {
  for (const [t, s, e] of children(b, from, to)) if (t === type) return [s, e];
  return undefined;
}

/** track_ID → [timescale, handler] from an init segment's moov. */
export function initTracks(init: Buffer): Map<number, { timescale: number; video: boolean }> {
  const out = new Map<number, { timescale: number; video: boolean }>();
  const moov = child(init, 0, init.length, 'moov');
  if (!moov) return out;
  for (const [t, s, e] of children(init, moov[0] + 8, moov[1])) {
    if (t !== 'trak') continue;
    const tkhd = child(init, s + 8, e, 'tkhd');
    const mdia = child(init, s + 8, e, 'mdia');
    if (!tkhd || !mdia) continue;
    const mdhd = child(init, mdia[0] + 8, mdia[1], 'mdhd');
    const hdlr = child(init, mdia[0] + 8, mdia[1], 'hdlr');
    if (!mdhd || !hdlr) continue;
    // Version 0 boxes: 8 header + 4 version/flags + two 4-byte times before the field.
    out.set(tkhd[0] + 20 <= tkhd[1] ? init.readUInt32BE(tkhd[0] + 20) : 0, {
      timescale: init.readUInt32BE(mdhd[0] + 20),
      video: typeAt(init, hdlr[0] + 12) === 'vide',
    });
  }
  return out;
}

export class Segmenter {
  readonly segments: Segment[] = [];
  #tracks = new Map<number, { timescale: number; video: boolean }>();
  #main: number | undefined;
  #inits = new Map<number, Buffer>();
  #initVersion = -1;
  #open: Open = { parts: [], bytes: 0, start: undefined, end: undefined };
  #nextSeq = 0;
  #maxDuration = 0;

  constructor(private readonly opts: SegmenterOptions) {}

  /** The sequence number the next finished segment gets (the one being filled). */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Seconds of the longest segment so far: the playlist's target duration never goes below it. */
  get maxDuration(): number {
    return this.#maxDuration;
  }

  get initVersion(): number {
    return this.#initVersion;
  }

  init(version = this.#initVersion): Buffer | undefined {
    return this.#inits.get(version);
  }

  /** Bytes held: finished segments and the one being filled. */
  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, this.#open.bytes);
  }

  /** One write of the viewer; returns the segment it finished, if it did. */
  write(parts: readonly Buffer[]): Segment | undefined {
    const head = parts[0];
    if (!head || head.length < 8) return undefined;
    if (typeAt(head, 0) === 'ftyp') return this.#newInit(Buffer.concat(parts));
    if (typeAt(head, 0) !== 'moof' || head.length < MOOF_DECODE_TIME + 8 || this.#initVersion < 0) return undefined;
    const trackId = head.readUInt32BE(MOOF_TRACK_ID);
    const sync = (head.readUInt32BE(MOOF_FLAGS) & NON_SYNC) === 0;
    const time = Number(head.readBigUInt64BE(MOOF_DECODE_TIME));
    let done: Segment | undefined;
    if (trackId === this.#main) {
      // Every segment starts at a keyframe (EXT-X-INDEPENDENT-SEGMENTS): the viewer begins at one
      // and a new init comes right before one, so this drops nothing from the shared muxer.
      if (this.#open.parts.length === 0 && !sync) return undefined;
      const start = this.#open.start;
      const timescale = this.#tracks.get(trackId)!.timescale;
      if (start !== undefined && sync && time - start >= this.opts.targetSeconds * timescale) done = this.#finish((time - start) / timescale);
      this.#open.start ??= time;
      this.#open.end = time + head.readUInt32BE(MOOF_DURATION);
    } else if (this.#open.parts.length === 0) {
      // A segment starts with its main track's sample (the keyframe): audio before it waits for the next.
      return undefined;
    }
    for (const p of parts) {
      this.#open.parts.push(p);
      this.#open.bytes += p.length;
    }
    return done;
  }

  #newInit(init: Buffer): Segment | undefined {
    // Samples made for the old init end their segment here; the next plays with the new one.
    const done = this.#open.parts.length > 0 ? this.#finish(undefined) : undefined;
    this.#initVersion++;
    this.#inits.set(this.#initVersion, init);
    this.#tracks = initTracks(init);
    const ids = [...this.#tracks.keys()];
    this.#main = ids.find((id) => this.#tracks.get(id)!.video) ?? ids[0];
    return done;
  }

  /** Ends the open segment; `seconds` undefined = as long as its main track's samples last. */
  #finish(seconds: number | undefined): Segment {
    const { start, end } = this.#open;
    const timescale = this.#main === undefined ? undefined : this.#tracks.get(this.#main)?.timescale;
    const covered = start !== undefined && end !== undefined && timescale ? (end - start) / timescale : 0;
    const seg: Segment = {
      seq: this.#nextSeq++,
      duration: seconds ?? covered,
      initVersion: this.#initVersion,
      parts: this.#open.parts,
      bytes: this.#open.bytes,
    };
    this.#open = { parts: [], bytes: 0, start: undefined, end: undefined };
    this.#maxDuration = Math.max(this.#maxDuration, seg.duration);
    this.segments.push(seg);
    while (this.segments.length > this.opts.keep) this.segments.shift();
    // Inits no kept segment plays with are gone too (the current one stays).
    const oldest = this.segments[0]!.initVersion;
    for (const v of this.#inits.keys()) if (v < oldest && v !== this.#initVersion) this.#inits.delete(v);
    return seg;
  }
}
