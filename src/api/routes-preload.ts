import { Router } from 'express';
import type { StreamRegistry } from '../core/registry.js';
import type { ConfigStore } from '../config/save.js';
import { sendSaveError } from './save-error.js';
import { normalisePreloadQuery, type PreloadTable } from '../outputs/preload.js';
import { sendError } from './http-error.js';

export interface PreloadContext {
  registry: StreamRegistry;
  store: ConfigStore;
  preloads: PreloadTable;
}

/** The query string's media keys, normalised as go2rtc does (outputs/preload.ts). */
function mediaQuery(originalUrl: string): string {
  return normalisePreloadQuery(originalUrl.split('?')[1] ?? '');
}

/** go2rtc's /api/preload: GET lists, PUT adds (and saves), DELETE removes (and saves). */
export function preloadRoutes(ctx: PreloadContext): Router {
  const r = Router();
  r.get('/api/preload', (_req, res) => {
    res.json(ctx.preloads.list());
  });

  r.put('/api/preload', async (req, res) => {
    const name = typeof req.query.src === 'string' ? req.query.src : '';
    const stream = ctx.registry.get(name);
    if (!stream) return sendError(res, 404, `stream not found: ${name}`);
    const query = mediaQuery(req.originalUrl);
    try {
      await ctx.store.setPreload(name, query);
    } catch (e) {
      return sendSaveError(res, e);
    }
    ctx.preloads.set(stream, query);
    res.status(200).end();
  });

  r.delete('/api/preload', async (req, res) => {
    const name = typeof req.query.src === 'string' ? req.query.src : '';
    // Not `name in list()`: "constructor" is in every object.
    if (!ctx.preloads.has(name)) return sendError(res, 404, `no preload for stream: ${name}`);
    try {
      await ctx.store.setPreload(name, undefined);
    } catch (e) {
      return sendSaveError(res, e);
    }
    ctx.preloads.delete(name);
    res.status(200).end();
  });
  return r;
}
