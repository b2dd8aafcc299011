// Composition root: builds every long-lived part from a Config and tears them down in order.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { log } from './core/log.js';
import { StreamRegistry } from './core/registry.js';
import type { Config } from './config/schema.js';
import { RtspServer } from './rtsp/server.js';
import { createSourceFactory } from './sources/factory.js';
import { ApiServer } from './api/server.js';
import { SessionTable } from './api/sessions.js';
import { infoRoutes } from './api/routes-info.js';
import { webrtcRoutes } from './api/routes-webrtc.js';
import type { WebRtcSession } from './outputs/webrtc/session.js';
import type { WebRtcSettings } from './outputs/webrtc/settings.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const VERSION: string = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

export interface StartOptions {
  configPath: string;
  ffmpegBin: string;
}

export class Camrelay {
  private constructor(
    readonly api: ApiServer,
    readonly rtsp: RtspServer,
    readonly registry: StreamRegistry,
    readonly sessions: SessionTable<WebRtcSession>,
  ) {}

  static async start(config: Config, opts: StartOptions): Promise<Camrelay> {
    const rtsp = new RtspServer({ listen: config.rtsp.listen });
    // The factory needs the registry (transcodes read other streams) and the registry the factory.
    const registry: StreamRegistry = new StreamRegistry(
      createSourceFactory({
        bin: opts.ffmpegBin,
        grace: config.ffmpeg.stopGrace,
        rtsp,
        args: { logLevel: config.log.level === 'debug' || config.log.level === 'trace' ? 'info' : 'error' },
        isStream: (name) => registry.get(name) !== undefined,
      }),
    );
    for (const [name, s] of Object.entries(config.streams)) registry.set(name, s.sources, s.settings);
    const sessions = new SessionTable<WebRtcSession>();
    const webrtc: WebRtcSettings = {
      candidates: config.webrtc.candidates,
      iceServers: config.webrtc.iceServers,
      portRange: config.webrtc.portRange,
      timeouts: config.webrtc.timeouts,
      loopbackOnly: config.webrtc.loopbackOnly,
    };
    const api = new ApiServer(
      config.api.listen,
      [
        infoRoutes({ registry, version: VERSION, configPath: path.resolve(opts.configPath), rtspListen: config.rtsp.listen }),
        webrtcRoutes({ registry, sessions, settings: webrtc }),
      ],
      path.join(root, 'web'),
    );
    const app = new Camrelay(api, rtsp, registry, sessions);
    try {
      await rtsp.listen();
      await api.listen();
    } catch (e) {
      await app.close();
      throw e;
    }
    log.info({ streams: registry.all().map((s) => s.name) }, 'camrelay ready');
    return app;
  }

  /** Viewers first, then streams (their sources and ffmpeg children), then the servers. */
  async close(): Promise<void> {
    this.sessions.close();
    this.registry.close();
    await Promise.all([this.sessions.done, this.registry.done]);
    this.rtsp.close();
    this.api.close();
    await Promise.all([this.rtsp.done, this.api.done]);
  }
}
