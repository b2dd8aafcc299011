// Changes to config.yaml made through the API: comments and key order kept (the yaml Document
// model), the result validated before it is written, one change at a time. Written atomically
// (temp file next to the real file, fsync, rename) where the file can be replaced, and in place
// where it cannot: a single-file bind mount (docker-compose's `./config.yaml:/config/config.yaml`)
// refuses the rename with EBUSY. A symlinked config.yaml stays a symlink: its target is what is
// replaced. A file its owner made read-only is never written.
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { isMap, parseDocument, YAMLMap, type Document } from 'yaml';
import { spliceDelete, spliceSet } from './yaml-splice.js';
import { log } from '../core/log.js';
import { IN_PLACE_MARK, parseConfig } from './load.js';
import type { Config, StreamConfig } from './schema.js';

export interface SaveHooks {
  /** Tests simulate a crash between writing the temp file and renaming it. */
  beforeRename?: (tmpFile: string) => void;
  /** Replaces fs.renameSync: tests fail it as over a bind mount (EBUSY) or across filesystems (EXDEV). */
  rename?: (from: string, to: string) => void;
  /**
   * Called inside an in-place write once everything but the first byte is written and synced:
   * the state a crash at the worst moment leaves (tests read the file there).
   */
  inPlaceWritten?: (file: string) => void;
}

/** The config file could not be written; the message names the file and the reason. */
export class ConfigSaveError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConfigSaveError';
  }
}

/** The user made the file (or its filesystem) read-only: camrelay will not change it. */
export class ConfigReadOnlyError extends ConfigSaveError {
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(file, message, options);
    this.name = 'ConfigReadOnlyError';
  }
}

/** Rename failures that mean "this path cannot be replaced", not "this save is wrong". */
const CANNOT_REPLACE: Record<string, string> = {
  EBUSY: 'it is a mount point, e.g. a single-file bind mount',
  EXDEV: 'it is on another filesystem than its directory',
};
/** Failures to create the temp file that still leave the file itself writable. */
const NO_TEMP_FILE: Record<string, string> = {
  EACCES: 'its directory is not writable',
  EPERM: 'its directory is not writable',
  EROFS: 'its directory is on a read-only filesystem',
};

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

export class ConfigStore {
  #queue: Promise<unknown> = Promise.resolve();
  #warnedInPlace = false;

  constructor(
    readonly file: string,
    private readonly hooks: SaveHooks = {},
  ) {}

  /** Creates or replaces streams.<name>; a stream written as a mapping keeps its other keys. */
  setStream(name: string, sources: string[]): Promise<StreamConfig> {
    return this.#edit(
      (doc) => {
        const streams = sectionMap(doc, 'streams');
        const value = sources.length === 1 ? sources[0] : sources;
        const current = streams.get(name, true);
        if (isMap(current)) current.set('sources', doc.createNode(sources, { flow: false }));
        else streams.set(name, doc.createNode(value));
      },
      (text) => {
        const current = parseDocument(text).getIn(['streams', name], true);
        if (isMap(current)) return spliceSet(text, ['streams', name, 'sources'], sources);
        return spliceSet(text, ['streams', name], sources.length === 1 ? sources[0]! : sources);
      },
    ).then((config) => config.streams[name]!);
  }

  deleteStream(name: string): Promise<void> {
    return this.#edit(
      (doc) => {
        sectionMap(doc, 'streams').delete(name);
        // A preload of a stream that no longer exists would make the file invalid.
        const preload = doc.get('preload', true);
        if (isMap(preload)) preload.delete(name);
        dropIfEmpty(doc, 'preload');
      },
      (text) => {
        const t = spliceDelete(text, ['streams', name]);
        return t === undefined || !isMap(parseDocument(t).get('preload', true)) ? t : spliceDelete(t, ['preload', name]);
      },
    ).then(() => undefined);
  }

  /** preload.<name> = query (go2rtc's section), or removed when `query` is undefined. */
  setPreload(name: string, query: string | undefined): Promise<void> {
    return this.#edit(
      (doc) => {
        const m = sectionMap(doc, 'preload');
        if (query === undefined) m.delete(name);
        else m.set(name, query);
        dropIfEmpty(doc, 'preload');
      },
      (text) => (query === undefined ? spliceDelete(text, ['preload', name]) : spliceSet(text, ['preload', name], query)),
    ).then(() => undefined);
  }

  /**
   * `change` edits the Document (the reference result); `splice`, when it can, makes the same
   * edit as text so the lines not changed stay byte-identical. A change that leaves the
   * configuration as it was writes nothing (Home Assistant PUTs the same sources on every offer).
   */
  #edit(change: (doc: Document) => void, splice?: (text: string) => string | undefined): Promise<Config> {
    const run = async (): Promise<Config> => {
      const text = readFileSync(this.file, 'utf8');
      const doc = parseDocument(text);
      change(doc);
      // lineWidth 0: long source URLs stay on one line, as the user wrote them.
      let next = doc.toString({ lineWidth: 0 });
      const spliced = splice?.(text);
      if (spliced !== undefined && sameData(spliced, doc)) next = spliced;
      // Never write a file camrelay would refuse at its next start.
      const config = parseConfig(next, this.file);
      if (unchanged(text, this.file, config)) return config;
      this.#write(next);
      return config;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #write(text: string): void {
    // Through every symlink: the link stays, the file it names is replaced.
    const target = realpathSync(this.file);
    const where = lstatSync(this.file).isSymbolicLink() ? `${this.file} (a symlink to ${target})` : this.file;
    const st = statSync(target);
    // The mode bits, not access(): camrelay often runs as root, which may write anyway.
    if ((st.mode & 0o200) === 0) {
      throw new ConfigReadOnlyError(
        this.file,
        `${where} is read-only (mode ${octal(st.mode)}): camrelay does not change a file its owner made read-only; make it writable (chmod u+w) to save changes made through the API`,
      );
    }
    const data = Buffer.from(text, 'utf8');
    const dir = path.dirname(target);
    const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    let fd: number | undefined;
    let why: string | undefined;
    try {
      try {
        fd = openSync(tmp, 'wx', 0o600);
      } catch (e) {
        why = NO_TEMP_FILE[errno(e) ?? ''];
        throw e;
      }
      why = keepOwnerAndMode(fd, st);
      if (why) throw new Error(why);
      writeAll(fd, data, 0);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      this.hooks.beforeRename?.(tmp);
      try {
        (this.hooks.rename ?? renameSync)(tmp, target);
      } catch (e) {
        why = CANNOT_REPLACE[errno(e) ?? ''];
        throw e;
      }
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      if (why === undefined) {
        unlinkQuietly(tmp);
        throw saveError(this.file, where, e);
      }
      // The complete new text stays in the temp file (when there is one) until the in-place
      // write is over: after a crash in between, it is what the user restores from.
      try {
        this.#writeInPlace(target, where, data, `${errno(e) ?? 'owner'}: ${why}`);
      } finally {
        unlinkQuietly(tmp);
      }
      return;
    }
    // The rename itself is durable only once the directory is synced.
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  /**
   * Writes the text into the existing file: same inode, so a bind mount, owner and mode stay.
   * Not atomic, so the order makes every state a crash can leave either the old file, the new
   * one, or a file camrelay refuses at its next start (never a mix that loads): the first byte
   * becomes IN_PLACE_MARK (synced), then the rest of the new text is written after it and the
   * file cut to its length (synced), and only then the real first byte goes in (synced). A crash
   * in between leaves the mark and the rest of the new text; loading names the interrupted save,
   * and the temp file next to it (kept until this returns) holds the complete new text.
   */
  #writeInPlace(target: string, where: string, data: Buffer, why: string): void {
    if (!this.#warnedInPlace) {
      this.#warnedInPlace = true;
      log.warn({ file: this.file, target, why }, 'config file cannot be replaced (bind-mounted?): saving it in place, not atomically');
    }
    let fd: number;
    try {
      // O_WRONLY alone: no O_TRUNC (the old text stays until overwritten), no O_CREAT.
      fd = openSync(target, constants.O_WRONLY);
    } catch (e) {
      throw saveError(this.file, where, e);
    }
    try {
      writeAll(fd, IN_PLACE_MARK, 0);
      fsyncSync(fd);
      writeAll(fd, data.subarray(1), 1);
      ftruncateSync(fd, data.length);
      fsyncSync(fd);
      this.hooks.inPlaceWritten?.(target);
      writeAll(fd, data.subarray(0, 1), 0);
      fsyncSync(fd);
    } catch (e) {
      throw saveError(this.file, where, e);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Gives the temp file the owner and mode of the file it replaces (openSync's mode goes through
 * the umask; the owner is whoever runs camrelay). Returns why it cannot, when only an in-place
 * write keeps them: a non-root process cannot give a file to another user.
 */
function keepOwnerAndMode(fd: number, st: Stats): string | undefined {
  const mine = fstatSync(fd);
  if (mine.uid !== st.uid || mine.gid !== st.gid) {
    try {
      fchownSync(fd, st.uid, st.gid);
    } catch (e) {
      if (errno(e) === 'EPERM') return `a new file cannot get its owner ${st.uid}:${st.gid}`;
      throw e;
    }
  }
  // After the chown, which clears set-id bits.
  fchmodSync(fd, st.mode & 0o7777);
  return undefined;
}

function writeAll(fd: number, data: Buffer, position: number): void {
  let off = 0;
  // writeSync may write less than asked; each call writes at least one byte or throws.
  while (off < data.length) off += writeSync(fd, data, off, data.length - off, position + off);
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* never created, or already renamed */
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/** An fs error as a message naming the file and what to do; other errors (tests' hooks) as they are. */
function saveError(file: string, where: string, e: unknown): unknown {
  const code = errno(e);
  if (code === undefined) return e;
  const msg = (e as Error).message;
  if (code === 'EROFS') return new ConfigReadOnlyError(file, `${where} is on a read-only filesystem (mounted read-only, e.g. Docker's :ro): changes made through the API cannot be saved`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM') return new ConfigSaveError(file, `${where}: permission denied (camrelay runs as uid ${process.getuid?.() ?? '?'}): ${msg}`, { cause: e });
  if (code === 'ENOENT') return new ConfigSaveError(file, `${where}: file not found: ${msg}`, { cause: e });
  return new ConfigSaveError(file, `${where}: ${msg}`, { cause: e });
}

/** The spliced text means exactly what the edited Document means. */
function sameData(text: string, doc: Document): boolean {
  const parsed = parseDocument(text);
  return parsed.errors.length === 0 && isDeepStrictEqual(parsed.toJS(), doc.toJS());
}

/**
 * The file already says this (after ${} substitution: a PUT of the resolved password keeps the
 * file's reference to the variable). A file that does not load today is never "unchanged".
 */
function unchanged(text: string, file: string, next: Config): boolean {
  try {
    return isDeepStrictEqual(parseConfig(text, file), next);
  } catch {
    return false;
  }
}

/** An emptied optional section goes, as its text does in spliceDelete (streams: stays). */
function dropIfEmpty(doc: Document, key: string): void {
  const m = doc.get(key, true);
  if (isMap(m) && m.items.length === 0) doc.delete(key);
}

function sectionMap(doc: Document, key: string): YAMLMap {
  const existing = doc.get(key, true);
  if (isMap(existing)) return existing;
  const m = new YAMLMap();
  doc.set(key, m);
  return m;
}
