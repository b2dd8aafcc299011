// The current group of pictures of one video track: the latest keyframe and every frame after
// it. A viewer joining a live stream starts from it at once instead of waiting up to a whole GOP
// for the next keyframe. Bounded in bytes and in age: a camera with a very long GOP (or a
// stream gone wrong) empties the cache until its next keyframe rather than holding memory.
import { performance } from 'node:perf_hooks';
import { GopArena } from './gop-arena.js';
import type { Frame } from './media.js';

export interface GopCacheSettings {
  /** Most bytes of frame data held; 0 disables the cache. */
  maxBytes: number;
  /** Most ms between the keyframe's arrival and the latest frame held. */
  maxDuration: number;
}

// A 1080p camera at 8 Mbit/s with a 4 s GOP holds about 4 MB.
export const DEFAULT_GOP_CACHE: GopCacheSettings = { maxBytes: 8 * 1024 * 1024, maxDuration: 10_000 };

/**
 * The cache holds copies of the frames' data in an arena it reuses from one GOP to the next,
 * not the frames it is given. Holding those would keep every frame alive for a GOP: long enough
 * for V8 to move it to its old generation, which it sweeps only in a full collection, when the
 * external memory has grown by tens of MB. The frames passed on to viewers then die young, and
 * what a camera leaves behind is one GOP, reused.
 */
export class GopCache {
  #arena = new GopArena();
  #frames: Frame[] = [];
  #bytes = 0;
  #since = 0;
  #keyframe: Frame | undefined;
  /** The copy of #keyframe handed out, made on first demand and the same object until the next keyframe. */
  #keyframeOut: Frame | undefined;

  constructor(
    private readonly settings: GopCacheSettings = DEFAULT_GOP_CACHE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Video frames of one track, in arrival order. */
  push(f: Frame): void {
    if (f.keyframe) {
      this.#arena.reset();
      this.#keyframe = this.#copy(f);
      this.#keyframeOut = undefined;
      this.#frames = [];
      this.#bytes = 0;
      this.#since = this.now();
      if (this.settings.maxBytes <= 0) return;
      this.#frames.push(this.#keyframe);
    } else {
      if (this.#frames.length === 0) return;
      this.#frames.push(this.#copy(f));
    }
    for (const d of f.data) this.#bytes += d.length;
    if (this.#bytes > this.settings.maxBytes || this.now() - this.#since > this.settings.maxDuration) this.clear();
  }

  /**
   * The latest keyframe, kept even when the GOP after it outgrew the bounds (snapshots use it).
   * Its own copy: it stays whole after the cache moves on, and it is the same object for as long
   * as it is the latest, so that a JPEG made of it can be reused.
   */
  get keyframe(): Frame | undefined {
    if (this.#keyframe && !this.#keyframeOut) this.#keyframeOut = copyFrames([this.#keyframe])[0];
    return this.#keyframeOut;
  }

  /**
   * From the keyframe to the latest frame; empty when nothing decodable is held. Their data are
   * views into the arena, overwritten after the next keyframe: whoever keeps them past the
   * current call takes copyFrames() of them.
   */
  get frames(): readonly Frame[] {
    return this.#frames;
  }

  get bytes(): number {
    return this.#bytes;
  }

  clear(): void {
    this.#frames = [];
    this.#bytes = 0;
  }

  #copy(f: Frame): Frame {
    return { track: f.track, timestamp: f.timestamp, keyframe: f.keyframe, data: f.data.map((d) => this.#arena.copy(d)) };
  }
}

/** Frames whose data are copies of theirs, in one new buffer. */
export function copyFrames(frames: readonly Frame[]): Frame[] {
  if (frames.length === 0) return [];
  let total = 0;
  for (const f of frames) for (const d of f.data) total += d.length;
  const into = Buffer.allocUnsafeSlow(total);
  let at = 0;
  return frames.map((f) => ({
    ...f,
    data: f.data.map((d) => {
      const v = into.subarray(at, at + d.length);
      v.set(d);
      at += d.length;
      return v;
    }),
  }));
}
