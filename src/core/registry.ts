import { Owned } from './owned.js';
import { Stream, type StreamSettings } from './stream.js';
import type { SourceFactory, SourceMaker } from './source.js';

/**
 * Where a stream's sources came from. Sources from the API are untrusted: the source factory
 * checks them again as network sources each time one starts (sources/factory.ts).
 */
export type SourceOrigin = 'config' | 'api';

/**
 * The named streams, in config order. Owns every Stream; closing it closes them all.
 * Events: 'removed' (name) once a stream left the registry (deleted or closed), after its sources
 * and consumers were closed: per-stream state kept elsewhere (metric series) goes with it.
 */
export interface RegistryEvents {
  removed: [name: string];
}

export class StreamRegistry extends Owned<RegistryEvents> {
  #streams = new Map<string, Stream>();
  #origins = new Map<string, SourceOrigin>();

  /** With a bare factory no source counts as reading a stream; give `{ make, reads }` for transcodes. */
  constructor(private readonly makeSource: SourceFactory | SourceMaker) {
    super('StreamRegistry');
  }

  get(name: string): Stream | undefined {
    return this.#streams.get(name);
  }

  all(): Stream[] {
    return [...this.#streams.values()];
  }

  /** Where the current sources of `name` came from; undefined for a stream that does not exist. */
  originOf(name: string): SourceOrigin | undefined {
    return this.#origins.get(name);
  }

  /** Creates the stream, or replaces its sources and settings when it exists (viewers stay). */
  set(name: string, sources: string[], settings: StreamSettings, origin: SourceOrigin = 'config'): Stream {
    if (this.closed) throw new Error('registry closed');
    this.#origins.set(name, origin);
    const existing = this.#streams.get(name);
    if (existing) {
      existing.sources = sources;
      existing.settings = settings;
      return existing;
    }
    const s = new Stream(name, sources, settings, this.makeSource);
    s.once('close', () => {
      // A stream of the same name set again while this one closed is not this one.
      if (this.#streams.get(name) !== s) return;
      this.#streams.delete(name);
      this.#origins.delete(name);
      this.emit('removed', name);
    });
    this.#streams.set(name, s);
    return s;
  }

  delete(name: string): boolean {
    const s = this.#streams.get(name);
    s?.close();
    return s !== undefined;
  }

  protected onClose(): Promise<void> {
    const all = this.all();
    for (const s of all) s.close();
    return Promise.all(all.map((s) => s.done)).then(() => undefined);
  }
}
