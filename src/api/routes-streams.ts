import { Router, type Request } from 'express';
import type { StreamRegistry } from '../core/registry.js';
import type { StreamSettings } from '../core/stream.js';
import { errorMessage } from '../core/errors.js';
import { log, maskCredentials } from '../core/log.js';
import { sendSaveError } from './save-error.js';
import type { ConfigStore } from '../config/save.js';
import { ENV_REFUSAL, checkSourceUrl } from '../sources/validate.js';
import { ffmpegInputText } from '../sources/ffmpeg-url.js';
import { SCHEMES } from '../sources/factory.js';
import { badApiStreamName } from './stream-names.js';
import { sendError } from './http-error.js';

export interface StreamsContext {
  registry: StreamRegistry;
  store: ConfigStore;
  defaults: StreamSettings;
}

/** Every value of a repeated query parameter (`?src=a&src=b`), as go2rtc reads them. */
function all(req: Request, key: string): string[] {
  const v = req.query[key];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/**
 * Home Assistant PUTs the same list on every offer and snapshot (it compares with the masked
 * producers[].url and never finds its password there): the same list changes nothing.
 */
function sameSources(current: readonly string[] | undefined, next: readonly string[]): boolean {
  return current !== undefined && current.length === next.length && current.every((s, i) => s === next[i]);
}

function one(req: Request, key: string): string {
  return all(req, key)[0] ?? '';
}

/**
 * go2rtc's stream management: PUT creates or replaces and saves, PATCH only in memory, DELETE
 * both. What comes in here is untrusted: names and sources are checked as coming from the
 * network (stream-names.ts, sources/validate.ts), and the registry remembers that these sources
 * came from the API so they are checked again each time they start.
 */
export function streamsRoutes(ctx: StreamsContext): Router {
  const r = Router();
  const isStream = (n: string) => ctx.registry.get(n) !== undefined;

  /** The name and sources, checked as coming from the network; the first problem as a 400 message. */
  const checked = (name: string, sources: string[]): string | undefined => {
    const bad = badApiStreamName(name);
    if (bad) return bad;
    // Before anything that echoes a source: the answer must not depend on the variable.
    if (sources.some((s) => s.includes('${'))) return ENV_REFUSAL;
    for (const src of sources) {
      try {
        // `ffmpeg:<x>` is accepted only when <x> is a stream now (or the stream being written,
        // Home Assistant's [rtsp://cam, ffmpeg:<name>#audio=opus]); it stays bound to it.
        checkSourceUrl(src, { isStream: (n) => n === name || isStream(n), fromNetwork: true });
      } catch (e) {
        return `source ${JSON.stringify(maskCredentials(src))}: ${errorMessage(e)}`;
      }
    }
    return undefined;
  };

  /** Other streams with a source that reads `name` (`ffmpeg:<name>#…`). */
  const readersOf = (name: string): string[] =>
    ctx.registry
      .all()
      .filter((s) => s.name !== name && s.sources.some((src) => ffmpegInputText(src) === name))
      .map((s) => s.name);

  r.get('/api/schemes', (_req, res) => {
    res.json([...SCHEMES]);
  });

  r.put('/api/streams', async (req, res) => {
    const sources = all(req, 'src');
    const name = one(req, 'name') || sources[0] || '';
    const problem = checked(name, sources);
    if (problem) return sendError(res, 400, problem);
    try {
      // The store writes nothing when the file already says this (config/save.ts).
      const saved = await ctx.store.setStream(name, sources);
      if (sameSources(ctx.registry.get(name)?.sources, saved.sources)) {
        log.debug({ stream: name }, 'stream PUT with its current sources: nothing to change');
        return res.status(200).end();
      }
      ctx.registry.set(name, saved.sources, saved.settings, 'api');
      log.info({ stream: name, sources: sources.map(maskCredentials) }, 'stream saved');
      res.status(200).end();
    } catch (e) {
      sendSaveError(res, e);
    }
  });

  r.patch('/api/streams', (req, res) => {
    const name = one(req, 'name');
    const sources = all(req, 'src');
    if (!name) return sendError(res, 400, 'PATCH needs ?name=');
    const problem = checked(name, sources);
    if (problem) return sendError(res, 400, problem);
    const existing = ctx.registry.get(name);
    if (sameSources(existing?.sources, sources)) return res.status(200).end();
    ctx.registry.set(name, sources, existing?.settings ?? ctx.defaults, 'api');
    res.status(200).end();
  });

  r.delete('/api/streams', async (req, res) => {
    const name = one(req, 'src') || one(req, 'name');
    if (!ctx.registry.get(name)) return sendError(res, 404, `stream not found: ${name}`);
    // Refused rather than cascaded: a reader left without its stream would read a file or
    // device of that name instead, and removing the readers too would delete what was not asked.
    const readers = readersOf(name);
    if (readers.length > 0) {
      return sendError(res, 409, `stream "${name}" is read by ${readers.map((n) => `"${n}"`).join(', ')}: delete or change ${readers.length > 1 ? 'those' : 'that'} first`);
    }
    try {
      await ctx.store.deleteStream(name);
    } catch (e) {
      return sendSaveError(res, e);
    }
    ctx.registry.delete(name);
    log.info({ stream: name }, 'stream deleted');
    res.status(200).end();
  });
  return r;
}
