import { Owned } from './owned.js';
import { Stream, type StreamSettings } from './stream.js';
import type { SourceFactory } from './source.js';

/** The named streams, in config order. Owns every Stream; closing it closes them all. */
export class StreamRegistry extends Owned {
  #streams = new Map<string, Stream>();

  constructor(private readonly makeSource: SourceFactory) {
    super('StreamRegistry');
  }

  get(name: string): Stream | undefined {
    return this.#streams.get(name);
  }

  all(): Stream[] {
    return [...this.#streams.values()];
  }

  /** Creates the stream, or replaces its sources and settings when it exists (viewers stay). */
  set(name: string, sources: string[], settings: StreamSettings): Stream {
    if (this.closed) throw new Error('registry closed');
    const existing = this.#streams.get(name);
    if (existing) {
      existing.sources = sources;
      existing.settings = settings;
      return existing;
    }
    const s = new Stream(name, sources, settings, this.makeSource);
    s.once('close', () => this.#streams.delete(name));
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
