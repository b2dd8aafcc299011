// Changes to config.yaml made through the API: comments and key order kept (the yaml Document
// model), the result validated before it is written, and written atomically (temp file, fsync,
// rename), one change at a time.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isMap, parseDocument, YAMLMap, type Document } from 'yaml';
import { parseConfig } from './load.js';
import type { Config, StreamConfig } from './schema.js';

export interface SaveHooks {
  /** Tests simulate a crash between writing the temp file and renaming it. */
  beforeRename?: (tmpFile: string) => void;
}

export class ConfigStore {
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly hooks: SaveHooks = {},
  ) {}

  /** Creates or replaces streams.<name>; a stream written as a mapping keeps its other keys. */
  setStream(name: string, sources: string[]): Promise<StreamConfig> {
    return this.#edit((doc) => {
      const streams = sectionMap(doc, 'streams');
      const value = sources.length === 1 ? sources[0] : sources;
      const current = streams.get(name, true);
      if (isMap(current)) current.set('sources', doc.createNode(sources, { flow: false }));
      else streams.set(name, doc.createNode(value));
    }).then((config) => config.streams[name]!);
  }

  deleteStream(name: string): Promise<void> {
    return this.#edit((doc) => {
      sectionMap(doc, 'streams').delete(name);
      // A preload of a stream that no longer exists would make the file invalid.
      const preload = doc.get('preload', true);
      if (isMap(preload)) preload.delete(name);
    }).then(() => undefined);
  }

  /** preload.<name> = query (go2rtc's section), or removed when `query` is undefined. */
  setPreload(name: string, query: string | undefined): Promise<void> {
    return this.#edit((doc) => {
      const m = sectionMap(doc, 'preload');
      if (query === undefined) m.delete(name);
      else m.set(name, query);
    }).then(() => undefined);
  }

  #edit(change: (doc: Document) => void): Promise<Config> {
    const run = async (): Promise<Config> => {
      const text = readFileSync(this.file, 'utf8');
      const doc = parseDocument(text);
      change(doc);
      // lineWidth 0: long source URLs stay on one line, as the user wrote them.
      const next = doc.toString({ lineWidth: 0 });
      // Never write a file camrelay would refuse at its next start.
      const config = parseConfig(next, this.file);
      this.#writeAtomically(next);
      return config;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #writeAtomically(text: string): void {
    const dir = path.dirname(path.resolve(this.file));
    const tmp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const mode = statSync(this.file).mode & 0o777;
    let fd: number | undefined;
    try {
      fd = openSync(tmp, 'wx', mode);
      writeSync(fd, text);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      this.hooks.beforeRename?.(tmp);
      renameSync(tmp, this.file);
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {
        /* never created, or already renamed */
      }
      throw e;
    }
    // The rename itself is durable only once the directory is synced.
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}

function sectionMap(doc: Document, key: string): YAMLMap {
  const existing = doc.get(key, true);
  if (isMap(existing)) return existing;
  const m = new YAMLMap();
  doc.set(key, m);
  return m;
}
