// Composition root: builds every long-lived part from a Config and tears them down in order.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { log } from './core/log.js';
import { StreamRegistry } from './core/registry.js';
import { DEFAULTS, type Config } from './config/schema.js';
import { RtspServer } from './rtsp/server.js';
import { rtspPlayers } from './outputs/rtsp.js';
import { autoTranscodes } from './sources/auto-transcodes.js';
import { SnapshotPool } from './outputs/snapshot-pool.js';
import { HardwareEncoders } from './sources/hardware/choice.js';
import { detectHardware } from './sources/hardware/detect.js';
import { ffmpegRoutes } from './api/routes-ffmpeg.js';
import { createSourceFactory, sourceReads } from './sources/factory.js';
import { PushSource } from './sources/push.js';
import { ApiServer } from './api/server.js';
import { loadTlsCredentials } from './api/tls.js';
import { SessionTable } from './api/sessions.js';
import { infoRoutes } from './api/routes-info.js';
import { webrtcRoutes } from './api/routes-webrtc.js';
import { WsSignalling } from './api/ws.js';
import { ConnectingTable } from './api/connecting.js';
import { streamsRoutes } from './api/routes-streams.js';
import { mediaRoutes } from './api/routes-media.js';
import { MjpegHub } from './outputs/mjpeg-hub.js';
import { preloadRoutes } from './api/routes-preload.js';
import { mp4Routes } from './api/routes-mp4.js';
import { hlsRoutes } from './api/routes-hls.js';
import { HlsSessions } from './outputs/hls/sessions.js';
import { PreloadTable } from './outputs/preload.js';
import { basicAuthOk } from './api/auth.js';
import type { IncomingMessage } from 'node:http';
import { ConfigStore } from './config/save.js';
import type { WebRtcSession } from './outputs/webrtc/session.js';
import type { WebRtcSettings } from './outputs/webrtc/settings.js';
import { Metrics, metricsRoutes } from './api/metrics.js';
import { selectBackend, type SelectedBackend } from './outputs/webrtc/select-backend.js';
import { setTalkFfmpeg } from './outputs/talk/aac-encoder.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const VERSION: string = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

export interface StartOptions {
  configPath: string;
  ffmpegBin: string;
}

interface Parts {
  api: ApiServer;
  rtsp: RtspServer;
  registry: StreamRegistry;
  sessions: SessionTable<WebRtcSession>;
  ws: WsSignalling;
  preloads: PreloadTable;
  webrtcBackend: SelectedBackend;
  /** Aborts the startup probe of hardware encoders if it still runs at shutdown. */
  hardwareStop: AbortController;
  hardware: HardwareEncoders;
  snapshots: SnapshotPool;
}

export class Camrelay {
  private constructor(readonly parts: Parts) {}

  static async start(config: Config, opts: StartOptions): Promise<Camrelay> {
    // Before anything binds: a missing, unreadable, malformed or mismatched certificate or key stops startup.
    const tls = config.api.tls && { listen: config.api.tls.listen, credentials: loadTlsCredentials(config.api.tls) };
    // Then: a backend that cannot start (webrtc.listen taken) stops camrelay before anything binds.
    const choice = config.webrtc.backend ?? DEFAULTS.webrtcBackend;
    const webrtcBackend = await selectBackend(choice, { listen: config.webrtc.listen, loopbackOnly: config.webrtc.loopbackOnly });
    const backend = webrtcBackend.backend;
    log.info({ backend: backend.name, reason: webrtcBackend.reason }, 'webrtc backend');
    const { username, password, sessionTimeout, maxSendBuffer } = config.rtsp;
    // The ffmpeg an AAC camera's talker is encoded with (one per talker, src/outputs/talk).
    setTalkFfmpeg({ bin: opts.ffmpegBin, grace: config.ffmpeg.stopGrace });
    // In the background: a transcode that starts meanwhile waits for it (bounded), nothing else does.
    const hardwareStop = new AbortController();
    const hardware = new HardwareEncoders(detectHardware({ bin: opts.ffmpegBin, grace: config.ffmpeg.stopGrace, signal: hardwareStop.signal }));
    const metrics = new Metrics();
    const rtsp = new RtspServer({
      listen: config.rtsp.listen,
      auth: username !== undefined || password !== undefined ? { username: username ?? '', password: password ?? '' } : undefined,
      connection: {
        ...(sessionTimeout !== undefined && { sessionTimeoutMs: sessionTimeout }),
        ...(maxSendBuffer !== undefined && { maxSendBuffer }),
        headerTimeoutMs: config.rtsp.headerTimeout,
      },
      maxConnections: config.rtsp.maxConnections,
      onRefused: (reason) => metrics.rtspRefused(reason),
      // Publishing into a stream with configured sources needs credentials or rtsp.allow_publish.
      allowPublish: config.rtsp.allowPublish,
      hasSources: (name) => (registry.get(name)?.sources.length ?? 0) > 0,
      // Players of `rtsp://host:8554/<stream>`; the registry exists by the time one connects.
      players: metrics.watchPlayers(rtspPlayers({ get: (name) => registry.get(name) })),
      // External publishers push into configured streams; the stream owns what they send.
      publishers: (name, slot) => {
        const stream = registry.get(name);
        if (!stream) return false;
        const src = new PushSource(slot);
        metrics.source(name, src);
        stream.acceptPublisher(src);
        return true;
      },
    });
    // The factory needs the registry (transcodes read other streams) and the registry the factory.
    const registry: StreamRegistry = new StreamRegistry({
      reads: sourceReads,
      transcodes: autoTranscodes,
      make: metrics.watchSources(createSourceFactory({
        bin: opts.ffmpegBin,
        grace: config.ffmpeg.stopGrace,
        rtsp,
        args: { logLevel: config.log.level === 'debug' || config.log.level === 'trace' ? 'info' : 'error', hardware },
        isStream: (name) => registry.get(name) !== undefined,
      }, {}, { fromApi: (name) => registry.originOf(name) === 'api' })),
    });
    for (const [name, s] of Object.entries(config.streams)) registry.set(name, s.sources, s.settings);
    // webrtc.max_sessions counts HTTP and WebSocket sessions together (one SessionTable).
    const sessions = new SessionTable<WebRtcSession>({
      ...(config.webrtc.maxSessions !== undefined && { maxSessions: config.webrtc.maxSessions }),
      onRefused: () => metrics.refused(),
      connecting: new ConnectingTable(config.webrtc.maxConnectingPerClient, config.webrtc.timeouts.connect),
    });
    metrics.observe({ registry, sessions });
    const webrtc: WebRtcSettings = {
      candidates: config.webrtc.candidates,
      iceServers: config.webrtc.iceServers,
      portRange: config.webrtc.portRange,
      timeouts: config.webrtc.timeouts,
      loopbackOnly: config.webrtc.loopbackOnly,
    };
    // One Host/Origin rule for HTTP and WebSocket (docs/security.md).
    const browser = { allowedHosts: config.api.allowedHosts, origin: config.api.origin };
    const store = new ConfigStore(opts.configPath);
    const preloads = new PreloadTable();
    // One MJPEG encoder per stream and size for HTTP and WebSocket viewers alike.
    // Long-lived snapshot decoders: made here so that shutdown waits for their ffmpegs to exit.
    const snapshots = new SnapshotPool({
      ffmpegBin: opts.ffmpegBin,
      grace: config.ffmpeg.stopGrace,
      maxDecoders: config.api.maxSnapshots,
      cacheMs: config.api.snapshotCache,
      timeoutMs: config.streamDefaults.startTimeout,
    });
    // One HLS session table for GET /api/stream.m3u8 and /api/ws's {"type":"hls"} (one set of bounds).
    const hls = new HlsSessions();
    const mjpeg = new MjpegHub({ ffmpegBin: opts.ffmpegBin, grace: config.ffmpeg.stopGrace, maxEncoders: config.api.maxMjpegEncoders, onViewer: (v) => metrics.watchDrop(v, 'mjpeg') });
    const api = new ApiServer(
      config.api.listen,
      [
        infoRoutes({ registry, version: VERSION, configPath: path.resolve(opts.configPath), rtspListen: config.rtsp.listen }),
        webrtcRoutes({ registry, sessions, settings: webrtc, backend }),
        metricsRoutes(metrics),
        streamsRoutes({ registry, store, defaults: config.streamDefaults }),
        preloadRoutes({ registry, store, preloads }),
        mp4Routes({ registry }),
        hlsRoutes({ registry, sessions: hls }),
        ffmpegRoutes({ hardware }),
        mediaRoutes({ registry, ffmpegBin: opts.ffmpegBin, grace: config.ffmpeg.stopGrace, snapshotTimeout: config.streamDefaults.startTimeout, maxSnapshots: config.api.maxSnapshots, snapshotCache: config.api.snapshotCache, mjpeg, snapshots }),
      ],
      path.join(root, 'web'),
      config.api.username !== undefined || config.api.password !== undefined ? { username: config.api.username ?? '', password: config.api.password ?? '' } : undefined,
      { browser, maxConnections: config.api.maxConnections, headerTimeout: config.api.headerTimeout, ...(tls && { tls }) },
    );
    const creds = api.credentials;
    // Upgrades bypass express: the same Basic auth is checked here.
    const ws = new WsSignalling(api.http, {
      registry,
      sessions,
      settings: webrtc,
      backend,
      browser,
      idleTimeout: config.api.idleTimeout,
      mjpeg,
      hls,
      ...(creds && { authorize: (req: IncomingMessage) => basicAuthOk(req.headers.authorization, creds) }),
    });
    const app = new Camrelay({ api, rtsp, registry, sessions, ws, preloads, webrtcBackend, hardwareStop, hardware, snapshots });
    try {
      await rtsp.listen();
      await api.listen();
    } catch (e) {
      await app.close();
      throw e;
    }
    for (const [name, query] of Object.entries(config.preload)) preloads.set(registry.get(name)!, query);
    log.info({ streams: registry.all().map((s) => s.name) }, 'camrelay ready');
    return app;
  }

  /** Viewers first, then streams (their sources and ffmpeg children), then the servers. */
  async close(): Promise<void> {
    const { ws, sessions, preloads, registry, rtsp, api, webrtcBackend, hardwareStop, hardware, snapshots } = this.parts;
    hardwareStop.abort();
    ws.close(); // first: an offer still being answered is aborted, not added to a closed table
    sessions.close();
    preloads.close();
    registry.close();
    await Promise.all([ws.done, sessions.done, preloads.done, registry.done, snapshots.close()]);
    // Every peer has closed: node-datachannel's port and threads can go.
    await webrtcBackend.close();
    rtsp.close();
    api.close();
    await Promise.all([rtsp.done, api.done, hardware.settled]);
  }
}
