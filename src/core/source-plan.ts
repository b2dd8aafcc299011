// Which source of a stream's list serves which consumer, and which source to start next: pure
// functions of what runs and who waits, so the rules can be tested without timers or sources.
// The rules (docs/architecture.md, Lifecycle): per kind a consumer asks for, the first running
// source in list order with a track it accepts serves it; a later source starts only when a
// waiting consumer wants a kind nobody provides yet, one at a time; a source reading this very
// stream (a transcode, `ffmpeg:<name>#audio=opus`) never serves our own internal readers.
import { ALL_CODECS, type CodecName, type Kind, type MediaRequest, type Track } from './media.js';
import type { AutoTranscode, StreamInputOf } from './source.js';

export const KINDS: readonly Kind[] = ['video', 'audio'];

/** A running source as planning sees it. */
export interface PlannedRun {
  /** Its index in the stream's source list (0 is the primary). */
  index: number;
  /** Undefined while it starts. */
  tracks?: readonly Track[];
}

/** A consumer as planning sees it. */
export interface PlannedConsumer<C> {
  key: C;
  request: MediaRequest;
  /** Our own transcode reading the stream back (Consumer.internal). */
  internal: boolean;
  /** Still waiting for its tracks (attach() not yet resolved). */
  waiting: boolean;
}

/** The stream's list of sources, as planning sees it. */
export interface PlannedList {
  /** How many sources the list holds. */
  count: number;
  /** Whether the source at `index` reads this very stream back, and which kinds of it. */
  readsSelf(index: number): readonly Kind[] | undefined;
  /** A source not to start now: it failed since the primary went live, or waits to retry. */
  unavailable(index: number): boolean;
  /**
   * What the source at `index` is known to give before it runs: one kind in one codec for the
   * stream's automatic transcodes; undefined for a configured source (anything, until it runs).
   */
  provides?(index: number): { kind: Kind; codec: CodecName } | undefined;
}

/** Per kind the consumer accepts, the index of the first running source (in list order) with such a track. */
export function bindable(request: MediaRequest, internal: boolean, runs: readonly PlannedRun[], list: PlannedList): Map<Kind, number> {
  const from = new Map<Kind, number>();
  for (const run of [...runs].sort((x, y) => x.index - y.index)) {
    if (!run.tracks) continue;
    if (internal && list.readsSelf(run.index)) continue;
    for (const t of run.tracks) {
      if (!from.has(t.kind) && request[t.kind]?.includes(t.codec.name)) from.set(t.kind, run.index);
    }
  }
  return from;
}

/** Per kind a consumer asks for but `from` (its bindable sources) lacks: the codecs it accepts. */
export function lacking(request: MediaRequest, from: ReadonlyMap<Kind, number>): Map<Kind, readonly CodecName[]> {
  const out = new Map<Kind, readonly CodecName[]>();
  for (const k of KINDS) {
    const codecs = request[k];
    if (codecs && codecs.length > 0 && !from.has(k)) out.set(k, codecs);
  }
  return out;
}

/**
 * Whether the source at `index` may give something of `lacks`: a configured one may give
 * anything; an automatic transcode only its codec, and only of a kind some source that is not a
 * transcode of this stream has (nothing to make Opus of for a camera without audio).
 */
function mayHelp(index: number, lacks: ReadonlyMap<Kind, readonly CodecName[]>, list: PlannedList, runs: readonly PlannedRun[]): boolean {
  const p = list.provides?.(index);
  if (p === undefined) return lacks.size > 0;
  if (lacks.get(p.kind)?.includes(p.codec) !== true) return false;
  return runs.some((r) => !list.readsSelf(r.index) && r.tracks?.some((t) => t.kind === p.kind));
}

/**
 * The next source (after the primary) neither running nor unavailable, when none is starting;
 * with `lacks`, only one that may give some of it (an automatic transcode gives one known codec).
 */
export function nextCandidate(runs: readonly PlannedRun[], list: PlannedList, lacks?: ReadonlyMap<Kind, readonly CodecName[]>): number | undefined {
  if (runs.some((r) => !r.tracks)) return undefined;
  const running = new Set(runs.map((r) => r.index));
  for (let i = 1; i < list.count; i++) {
    if (running.has(i) || list.unavailable(i)) continue;
    if (!lacks || mayHelp(i, lacks, list, runs)) return i;
  }
  return undefined;
}

/**
 * What a source being started is asked for: the union of what the external consumers accept,
 * per kind in `kinds`. With `list` (the primary): also every codec of the kinds a transcode of
 * this stream reads, since the camera's AAC is what `ffmpeg:<name>#audio=opus` turns into Opus
 * though no viewer takes AAC itself.
 */
export function wanted(consumers: Iterable<Pick<PlannedConsumer<unknown>, 'request' | 'internal'>>, kinds: readonly Kind[] = KINDS, list?: PlannedList): MediaRequest {
  const want: MediaRequest = {};
  if (list) {
    for (let i = 1; i < list.count; i++) {
      for (const kind of list.readsSelf(i) ?? []) if (kinds.includes(kind)) want[kind] = [...ALL_CODECS[kind]];
    }
  }
  for (const c of consumers) {
    if (c.internal) continue;
    for (const kind of kinds) {
      const codecs = c.request[kind];
      if (!codecs) continue;
      want[kind] = [...new Set([...(want[kind] ?? []), ...codecs])];
    }
  }
  return want;
}

export interface Plan<C> {
  /** Waiting consumers that get their tracks now, with the source index per kind. */
  resolve: { consumer: C; from: Map<Kind, number> }[];
  /** The source to start for kinds some waiting consumer lacks, and what to ask it for. */
  start?: { index: number; want: MediaRequest };
}

/**
 * After any source event while the primary is live: which waiting consumers can be given their
 * tracks, and whether to start the next source for the kinds some of them still lack. A consumer
 * that lacks a kind waits while another source can still be tried or one is starting; our own
 * transcode never waits for sources, since one of them may be the transcode itself.
 */
export function plan<C>(consumers: readonly PlannedConsumer<C>[], runs: readonly PlannedRun[], list: PlannedList): Plan<C> {
  const pending = runs.some((r) => !r.tracks);
  const missing = new Map<Kind, CodecName[]>();
  let start: number | undefined;
  const resolve: Plan<C>['resolve'] = [];
  for (const c of consumers) {
    if (!c.waiting) continue;
    const from = bindable(c.request, c.internal, runs, list);
    if (!c.internal) {
      const lacks = lacking(c.request, from);
      const candidate = lacks.size > 0 ? nextCandidate(runs, list, lacks) : undefined;
      if (candidate !== undefined) {
        // Sources start one at a time, in list order: the earliest any waiter may use.
        if (start === undefined || candidate < start) start = candidate;
        for (const [k, codecs] of lacks) missing.set(k, [...new Set([...(missing.get(k) ?? []), ...codecs])]);
        continue;
      }
      if (lacks.size > 0 && pending) continue;
    }
    resolve.push({ consumer: c.key, from });
  }
  if (start === undefined) return { resolve };
  const p = list.provides?.(start);
  const kinds = p ? [p.kind] : [...missing.keys()];
  return { resolve, start: { index: start, want: wanted(consumers, kinds) } };
}

/**
 * A stream's list of source URLs as planning sees it, with what it remembers of each source: the
 * configured ones, then the automatic transcodes (`auto`), which start only for a consumer that
 * accepts what they give and gets it from nothing before them.
 */
export class SourceList implements PlannedList {
  /** Sources tried since the primary went live that gave nothing usable or failed. */
  readonly exhausted = new Set<number>();

  constructor(
    private readonly stream: string,
    private readonly configured: () => readonly string[],
    private readonly reads: StreamInputOf,
    private readonly retrying: (index: number) => boolean,
    private readonly auto: () => readonly AutoTranscode[] = () => [],
  ) {}

  /** Where the automatic transcodes begin: after the configured sources, and never at 0 (a publisher's place). */
  get #autoFrom(): number {
    return Math.max(1, this.configured().length);
  }

  get count(): number {
    const auto = this.auto().length;
    return auto > 0 ? this.#autoFrom + auto : this.configured().length;
  }

  /** The URL of the source at `index`: configured, else automatic. */
  url(index: number): string | undefined {
    const urls = this.configured();
    return index < urls.length ? urls[index] : this.auto()[index - this.#autoFrom]?.url;
  }

  /** Whether the source at `index` is one of the stream's automatic transcodes. */
  isAuto(index: number): boolean {
    return index >= this.#autoFrom && index < this.count;
  }

  provides(index: number): { kind: Kind; codec: CodecName } | undefined {
    const t = this.isAuto(index) ? this.auto()[index - this.#autoFrom] : undefined;
    return t && { kind: t.kind, codec: t.codec };
  }

  readsSelf(index: number): readonly Kind[] | undefined {
    const url = this.url(index);
    const input = url === undefined ? undefined : this.reads(url);
    return input?.stream === this.stream ? input.kinds : undefined;
  }

  unavailable(index: number): boolean {
    return this.exhausted.has(index) || this.retrying(index);
  }
}
