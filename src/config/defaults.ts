import type { StreamSettings } from '../core/stream.js';
import { DEFAULT_GOP_CACHE } from '../core/gop-cache.js';
import type { WebRtcBackendChoice } from './types.js';

// What a key left out of config.yaml (or given as `key:` with nothing after it) means.

export const DEFAULTS = {
  apiListen: ':1984',
  rtspListen: ':8554',
  webrtcListen: ':8555',
  webrtcBackend: 'auto' as WebRtcBackendChoice,
  connectTimeout: 15_000,
  disconnectTimeout: 3_500,
  maxConnectingPerClient: 8,
  api: { maxConnections: 256, headerTimeout: 10_000, idleTimeout: 60_000, maxSnapshots: 4, maxMjpegEncoders: 8, snapshotCache: 1_000 },
  rtsp: { maxConnections: 256, headerTimeout: 10_000 },
  stopGrace: { quit: 300, term: 500 },
  logLevel: 'info',
  stream: {
    idleTimeout: 0,
    startTimeout: 10_000,
    backoff: { base: 500, max: 30_000, stableAfter: 30_000 },
    gopCache: DEFAULT_GOP_CACHE,
    stallTimeout: 10_000,
    transcode: 'auto' as 'auto' | 'never',
  } satisfies StreamSettings,
};
