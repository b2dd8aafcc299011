// The current group of pictures of one video track: the latest keyframe and every frame after
// it. A viewer joining a live stream starts from it at once instead of waiting up to a whole GOP
// for the next keyframe. Bounded in bytes and in age: a camera with a very long GOP (or a
// stream gone wrong) empties the cache until its next keyframe rather than holding memory.
import { performance } from 'node:perf_hooks';
import type { Frame } from './media.js';

export interface GopCacheSettings {
  /** Most bytes of frame data held; 0 disables the cache. */
  maxBytes: number;
  /** Most ms between the keyframe's arrival and the latest frame held. */
  maxDuration: number;
}

// A 1080p camera at 8 Mbit/s with a 4 s GOP holds about 4 MB.
export const DEFAULT_GOP_CACHE: GopCacheSettings = { maxBytes: 8 * 1024 * 1024, maxDuration: 10_000 };

export class GopCache {
  #frames: Frame[] = [];
  #bytes = 0;
  #since = 0;
  /** The latest keyframe, kept even when the GOP after it outgrew the bounds (snapshots use it). */
  keyframe: Frame | undefined;

  constructor(
    private readonly settings: GopCacheSettings = DEFAULT_GOP_CACHE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Video frames of one track, in arrival order. */
  push(f: Frame): void {
    if (f.keyframe) {
      this.keyframe = f;
      this.#frames = [];
      this.#bytes = 0;
      this.#since = this.now();
    } else if (this.#frames.length === 0) {
      return;
    }
    if (this.settings.maxBytes <= 0) return;
    this.#frames.push(f);
    for (const d of f.data) this.#bytes += d.length;
    if (this.#bytes > this.settings.maxBytes || this.now() - this.#since > this.settings.maxDuration) this.clear();
  }

  /** From the keyframe to the latest frame; empty when nothing decodable is held. */
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
}
