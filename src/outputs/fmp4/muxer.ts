// One fragmented-MP4 muxer per stream and codec set, shared by all its viewers as RTP is
// packetized once: the one consumer attached to the stream for them. Each frame becomes one
// sample (one moof+mdat, go2rtc's layout) whose mdat is made once; each viewer adds its own moof.
// It keeps the samples since the latest keyframe so that a viewer joining starts there at once,
// and closes when its last viewer leaves (the stream then stops as for any last consumer).
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { CODECS } from '../../codecs/table.js';
import type { Mp4Use } from '../../codecs/format.js';
import { CloseReason } from '../../core/close-reason.js';
import type { Consumer, ConsumerInfo } from '../../core/consumer.js';
import type { Frame, Kind, MediaRequest, Track } from '../../core/media.js';
import { Owned } from '../../core/owned.js';
import type { Stream } from '../../core/stream.js';
import { NON_SYNC_SAMPLE, SYNC_SAMPLE, mdat } from '../../formats/mp4/fragment.js';
import { initSegment, type InitTrack } from '../../formats/mp4/init.js';
import { mimeType, notMatchedMessage } from './codecs.js';
import type { Fmp4Sample } from './sample.js';
import type { Fmp4Viewer } from './viewer.js';

/** The samples held for joiners: one GOP, bounded like the stream's GOP cache. */
export const MAX_CACHED_BYTES = 8 * 1024 * 1024;
export const MAX_CACHED_SAMPLES = 3000;

/** One track of the muxer: its MP4 side and where its frames sit on the muxer's timeline. */
interface Slot {
  id: number;
  kind: Kind;
  mp4: Mp4Use;
  track: Track;
  timescale: number;
  /** Added to a frame's timestamp to place it on the muxer's timeline; undefined until its first frame. */
  offset: number | undefined;
  last: number | undefined;
  lastDuration: number;
  /** The parameter sets the init segment was made with: a change in place needs a new one. */
  params: readonly (Buffer | undefined)[];
}

const paramsOf = (t: Track): (Buffer | undefined)[] => [t.params?.vps, t.params?.sps, t.params?.pps];

export class Fmp4Muxer extends Owned implements Consumer {
  readonly id = randomBytes(6).toString('base64url');
  #viewers = new Set<Fmp4Viewer>();
  #slots: Slot[] = [];
  #mime: string | undefined;
  #init: Buffer | undefined;
  #initDirty = true;
  #cache: Fmp4Sample[] = [];
  #cacheBytes = 0;
  /** Whether #cache starts at a point a viewer can begin at. */
  #cacheValid = false;
  #t0 = performance.now();
  #failure: Error | undefined;

  constructor(
    readonly stream: Stream,
    readonly request: MediaRequest,
  ) {
    super('Fmp4Muxer');
  }

  /** Attaches to the stream; a viewer added before or after is answered once the tracks are known. */
  async start(): Promise<void> {
    try {
      const tracks = await this.stream.attach(this);
      const usable = tracks.filter((t) => CODECS[t.codec.name].mp4);
      if (usable.length === 0) throw new Error(notMatchedMessage(this.stream.tracks, this.request));
      if (this.closed) return;
      // Video first, as go2rtc orders them: track ids in that order.
      usable.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'video' ? -1 : 1));
      this.#slots = usable.map((t, i) => ({
        id: i + 1,
        kind: t.kind,
        mp4: CODECS[t.codec.name].mp4!,
        track: t,
        timescale: t.codec.clockRate,
        offset: undefined,
        last: undefined,
        lastDuration: 0,
        params: paramsOf(t),
      }));
      this.#mime = mimeType(usable);
      for (const v of this.#viewers) v.answer(this.#mime);
      // Video alone can start at the stream's current GOP. With audio too it waits for the next
      // keyframe: the GOP holds no audio, and MSE plays only where both tracks are buffered.
      if (this.#slots.every((s) => s.kind === 'video')) this.#replay();
    } catch (e) {
      this.#failure = e instanceof Error ? e : new Error(String(e));
      this.close(this.#failure);
    }
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  /** Why the muxer failed to start, for the viewers that were waiting. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  add(v: Fmp4Viewer): void {
    if (this.closed) {
      v.close(this.#failure ?? new CloseReason('stream_closed'));
      return;
    }
    this.#viewers.add(v);
    v.once('close', () => this.#remove(v));
    if (!this.#mime) return;
    v.answer(this.#mime);
    if (!this.#cacheValid || !this.#init || this.#cache.length === 0) return;
    v.begin(this.#init, this.#cache[0]!.time / this.#cache[0]!.timescale);
    for (const s of this.#cache) {
      if (v.closed) return;
      v.send(s);
    }
  }

  #remove(v: Fmp4Viewer): void {
    if (this.#viewers.delete(v) && this.#viewers.size === 0) this.close();
  }

  /** The stream's current GOP, on a timeline whose latest frame is now. */
  #replay(): void {
    const gop = this.stream.catchUp(this);
    const lastTs = gop.at(-1)?.timestamp;
    const video = this.#slots.find((s) => s.kind === 'video');
    if (lastTs === undefined || !video) return;
    video.offset = this.#wallTicks(video) - lastTs;
    for (const f of gop) {
      if (this.closed) return;
      this.onFrame(f);
    }
  }

  #wallTicks(s: Slot): number {
    return Math.round(((performance.now() - this.#t0) * s.timescale) / 1000);
  }

  onFrame(f: Frame): void {
    if (this.closed) return;
    const slot = this.#slots.find((s) => s.kind === f.track.kind);
    if (!slot) return;
    if (slot.track !== f.track) {
      // A new source run (a reconnect): new Track objects, maybe new parameter sets, its own clock.
      // Another codec cannot go on in the same MSE SourceBuffer: its viewers start over.
      if (f.track.codec.name !== slot.track.codec.name) {
        this.close(new Error(`the stream's ${slot.kind} changed from ${slot.track.codec.name} to ${f.track.codec.name}`));
        return;
      }
      slot.track = f.track;
      slot.offset = undefined;
      this.#initDirty = true;
    }
    if (f.keyframe && slot.kind === 'video' && paramsOf(f.track).some((p, i) => p !== slot.params[i])) {
      slot.params = paramsOf(f.track);
      this.#initDirty = true;
    }
    const hasVideo = this.#slots[0]!.kind === 'video';
    const startPoint = hasVideo ? slot.kind === 'video' && f.keyframe : true;
    if (startPoint && this.#initDirty && !this.#rebuildInit()) return;
    if (!this.#init) return;
    const s = this.#sample(slot, f);
    if (slot.kind === 'video' && f.keyframe) {
      this.#cache = [];
      this.#cacheBytes = 0;
      this.#cacheValid = true;
    }
    if (this.#cacheValid && hasVideo) {
      this.#cache.push(s);
      this.#cacheBytes += s.mdat.length;
      if (this.#cacheBytes > MAX_CACHED_BYTES || this.#cache.length > MAX_CACHED_SAMPLES) {
        this.#cache = [];
        this.#cacheValid = false;
      }
    }
    const seconds = s.time / s.timescale;
    for (const v of this.#viewers) {
      if (!v.answered) continue;
      if (!v.begun) {
        if (!startPoint) continue;
        v.begin(this.#init, seconds);
      }
      v.send(s);
    }
  }

  /** The init segment for the current tracks; false while a sample entry lacks what it needs. */
  #rebuildInit(): boolean {
    const tracks: InitTrack[] = [];
    for (const s of this.#slots) {
      const entry = s.mp4.sampleEntry(s.track);
      if (!entry) return false;
      tracks.push({ id: s.id, kind: s.kind, timescale: s.timescale, entry });
    }
    const init = initSegment(tracks);
    const changed = this.#init !== undefined && !init.equals(this.#init);
    this.#init = init;
    this.#initDirty = false;
    if (changed) for (const v of this.#viewers) v.reinit(init);
    return true;
  }

  #sample(slot: Slot, f: Frame): Fmp4Sample {
    if (slot.offset === undefined) {
      // Its first frame is now on the muxer's clock, after whatever this track had before.
      const after = slot.last === undefined ? 0 : slot.last + slot.lastDuration;
      slot.offset = Math.max(this.#wallTicks(slot), after) - f.timestamp;
    }
    const time = f.timestamp + slot.offset;
    // Live: the next frame's time is unknown, so a sample lasts as long as the interval before it
    // (go2rtc's rule). 0 or over a second (the first, a gap) becomes a frame-ish default.
    let duration = slot.mp4.fixedDuration ?? (slot.last === undefined ? 0 : time - slot.last);
    if (duration <= 0 || duration > slot.timescale) duration = slot.lastDuration || Math.round(slot.timescale / (slot.kind === 'video' ? 25 : 50));
    slot.last = time;
    slot.lastDuration = duration;
    const keyframe = slot.kind === 'video' && f.keyframe;
    return {
      trackId: slot.id,
      kind: slot.kind,
      time,
      timescale: slot.timescale,
      duration,
      flags: slot.kind === 'audio' || keyframe ? SYNC_SAMPLE : NON_SYNC_SAMPLE,
      keyframe,
      mdat: mdat(slot.mp4.sample(f)),
    };
  }

  info(): ConsumerInfo {
    return {
      type: 'fmp4',
      format_name: 'fmp4',
      id: this.id,
      tracks: this.#slots.map((s) => `${s.kind}:${s.track.codec.name}`),
      viewers: [...this.#viewers].map((v) => v.info()),
    };
  }

  protected onClose(reason?: Error): void {
    this.stream.detach(this);
    this.#cache = [];
    const viewers = [...this.#viewers];
    this.#viewers.clear();
    for (const v of viewers) v.close(reason ?? new CloseReason('stream_closed'));
  }
}
