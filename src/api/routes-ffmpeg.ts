import { Router } from 'express';
import type { HardwareReport } from '../sources/hardware/detect.js';
import type { HardwareEncoders } from '../sources/hardware/choice.js';
import { sendError } from './http-error.js';

export interface FfmpegRoutesContext {
  hardware: Pick<HardwareEncoders, 'report' | 'ready'>;
}

/** One entry of go2rtc's source list (internal/api: name, info, url; empty fields left out). */
interface HardwareSource {
  name: 'OK' | 'ERROR';
  info?: string;
  url: string;
}

/**
 * go2rtc's answer: `{"sources": [{"name": "OK" | "ERROR", "url": "ffmpeg:...#video=h264#hardware=vaapi"}, …]}`,
 * one entry per engine and codec. `info` (a field of go2rtc's entries it leaves empty here) says
 * the device an engine works on, or why it does not.
 */
export function hardwareSources(report: HardwareReport): { sources: HardwareSource[] } {
  return {
    sources: report.tests.map((t) => {
      const info = t.ok ? t.device : t.info;
      return { name: t.ok ? 'OK' : 'ERROR', ...(info ? { info } : {}), url: `ffmpeg:...#video=${t.codec}#hardware=${t.engine}` };
    }),
  };
}

/**
 * GET /api/ffmpeg/hardware: what startup detection found (go2rtc runs its test encodes on each
 * request; here they ran once, and what a transcode uses is exactly this). A request during
 * detection waits for it, bounded.
 */
export function ffmpegRoutes(ctx: FfmpegRoutesContext): Router {
  const r = Router();
  r.get('/api/ffmpeg/hardware', async (_req, res) => {
    await ctx.hardware.ready();
    const report = ctx.hardware.report;
    if (!report) {
      res.setHeader('Retry-After', '5');
      return sendError(res, 503, 'hardware detection is still running');
    }
    res.json(hardwareSources(report));
  });
  return r;
}
