import { Router, type Response } from 'express';
import { maskCredentials, maskJsonText } from '../core/log.js';
import { errorMessage } from '../core/errors.js';
import { isProbeQuery, withProbe } from './probe.js';
import { liveObjects } from '../core/objects.js';
import type { StreamRegistry } from '../core/registry.js';
import { streamView } from './streams-view.js';
import { sendError } from './http-error.js';

export interface InfoContext {
  registry: StreamRegistry;
  version: string;
  configPath: string;
  rtspListen: string;
}

/**
 * JSON with every credential-looking part masked once more as a whole: what sources and
 * consumers put in their info() (URLs a player asked for, a camera's redirect) shows no secret
 * even where the part that made it did not mask it.
 */
function sendMasked(res: Response, body: unknown): void {
  res.type('application/json').send(maskJsonText(JSON.stringify(body)));
}

export function infoRoutes(ctx: InfoContext): Router {
  const r = Router();
  // Home Assistant polls this as a watchdog: keep it a constant-time answer.
  r.get('/api', (req, res) => {
    res.json({
      version: '1.9.14',
      camrelay: ctx.version,
      config_path: ctx.configPath,
      host: req.headers.host ?? '',
      pid: process.pid,
      rtsp: { listen: ctx.rtspListen, default_query: 'video&audio' },
    });
  });

  r.get('/api/streams', (req, res) => {
    const src = req.query.src;
    if (typeof src === 'string') {
      const s = ctx.registry.get(src);
      if (!s) return sendError(res, 404, `stream not found: ${src}`);
      const rawQuery = req.originalUrl.split('?')[1] ?? '';
      if (!isProbeQuery(rawQuery)) return sendMasked(res, streamView(s));
      // go2rtc's probe form: start the stream for this request and show what its sources found.
      const remoteAddr = req.socket.remoteAddress === undefined ? undefined : `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      withProbe(s, rawQuery, { remoteAddr, userAgent: req.headers['user-agent'] }, () => sendMasked(res, streamView(s))).catch((e: unknown) => {
        if (!res.headersSent) sendError(res, 500, maskCredentials(errorMessage(e)));
      });
      return;
    }
    // fromEntries defines own properties: a stream named "__proto__" (config.yaml may have one) is listed, not set as the prototype.
    sendMasked(res, Object.fromEntries(ctx.registry.all().map((s) => [s.name, streamView(s)])));
  });

  r.get('/api/debug/objects', (_req, res) => {
    res.json(liveObjects());
  });
  return r;
}
