// camrelay's RTSP side in this process, wired as src/app.ts wires it: a real RtspServer, a
// registry of real streams (ffmpeg sources publishing into the server), the RTSP player factory
// and external publishers. For tests that need options a config file does not have (a short
// nonce lifetime) or that must see the server's own counters.
import { validateConfig } from '../../src/config/schema.js';
import { StreamRegistry } from '../../src/core/registry.js';
import { rtspPlayers } from '../../src/outputs/rtsp.js';
import { RtspServer, type RtspServerOptions } from '../../src/rtsp/server.js';
import type { PlayerFactory } from '../../src/rtsp/player.js';
import { createSourceFactory } from '../../src/sources/factory.js';
import { PushSource } from '../../src/sources/push.js';

export interface MiniRelay {
  server: RtspServer;
  registry: StreamRegistry;
  url(path: string): string;
  close(): Promise<void>;
}

/** `streams` as in config.yaml (a source list per name, [] for a publisher-fed stream, or a mapping with its own settings). */
export interface MiniRelayOptions extends Omit<RtspServerOptions, 'listen' | 'players' | 'publishers' | 'hasSources'> {
  /** Every DESCRIBE is answered this much later than the stream allows: a slow camera. */
  describeDelayMs?: number;
}

export async function startMiniRelay(streams: Record<string, string[] | Record<string, unknown>>, miniOpts: MiniRelayOptions = {}): Promise<MiniRelay> {
  const { describeDelayMs, ...opts } = miniOpts;
  const { config, issues } = validateConfig({ streams });
  if (!config) throw new Error(`bad test streams: ${JSON.stringify(issues)}`);
  const server = new RtspServer({
    listen: '127.0.0.1:0',
    ...opts,
    players: slowDescribe(rtspPlayers({ get: (name) => registry.get(name) }), describeDelayMs),
    hasSources: (name) => (registry.get(name)?.sources.length ?? 0) > 0,
    publishers: (name, slot) => {
      const stream = registry.get(name);
      if (!stream) return false;
      stream.acceptPublisher(new PushSource(slot));
      return true;
    },
  });
  const registry: StreamRegistry = new StreamRegistry(
    createSourceFactory({
      bin: '/usr/bin/ffmpeg',
      grace: config.ffmpeg.stopGrace,
      rtsp: server,
      args: { logLevel: 'error' },
      isStream: (name) => registry.get(name) !== undefined,
    }),
  );
  for (const [name, s] of Object.entries(config.streams)) registry.set(name, s.sources, s.settings);
  await server.listen();
  return {
    server,
    registry,
    url: (path) => `rtsp://127.0.0.1:${server.port}/${path}`,
    close: async () => {
      registry.close();
      server.close();
      await Promise.all([registry.done, server.done]);
    },
  };
}

function slowDescribe(f: PlayerFactory, ms: number | undefined): PlayerFactory {
  if (!ms) return f;
  return {
    open(ctx) {
      const p = f.open(ctx);
      if (!p) return p;
      const describe = p.describe.bind(p);
      p.describe = async () => {
        const sdp = await describe();
        await new Promise((resolve) => setTimeout(resolve, ms));
        return sdp;
      };
      return p;
    },
  };
}
