import { z } from 'zod';
import { duration, listen, portRange, positiveDuration, positiveInt, stringList } from './fields.js';
import { LOG_LEVELS, WEBRTC_BACKENDS } from './types.js';

// config.yaml's accepted keys, section by section: go2rtc's shape where go2rtc has the key,
// snake_case as in the file. Strict objects, so an unknown key is an error, not ignored.

const auth = {
  username: z.string().optional(),
  password: z.string().optional(),
};

const backoffFields = z.strictObject({
  base: positiveDuration.optional(),
  max: positiveDuration.optional(),
  stable_after: duration.optional(),
});

const gopCacheFields = z.strictObject({
  max_bytes: z.number().int().min(0, { message: 'must be 0 (no cache) or more bytes' }).optional(),
  max_duration: positiveDuration.optional(),
});

const lifecycleFields = {
  idle_timeout: duration.optional(),
  start_timeout: positiveDuration.optional(),
  stall_timeout: positiveDuration.optional(),
  backoff: backoffFields.optional(),
  gop_cache: gopCacheFields.optional(),
  // auto: a viewer that cannot take the camera's codec gets a shared transcode; never: an error.
  transcode: z.enum(['auto', 'never']).optional(),
};

export const streamObject = z.strictObject({ sources: stringList('a source URL'), ...lifecycleFields });

export const fileSchema = z.strictObject({
  api: z
    .strictObject({
      listen: listen.optional(),
      // go2rtc's HTTPS keys: tls_cert and tls_key are each PEM text (it has a line break) or a file path.
      tls_listen: listen.optional(),
      tls_cert: z.string().optional(),
      tls_key: z.string().optional(),
      ...auth,
      allowed_hosts: z.array(z.string().min(1)).optional(),
      origin: z.enum(['', '*']).optional(),
      max_connections: positiveInt.optional(),
      header_timeout: positiveDuration.optional(),
      idle_timeout: positiveDuration.optional(),
      max_snapshots: positiveInt.optional(),
      max_mjpeg_encoders: positiveInt.optional(),
      snapshot_cache: duration.optional(),
    })
    .optional(),
  rtsp: z
    .strictObject({
      listen: listen.optional(),
      ...auth,
      session_timeout: positiveDuration.optional(),
      max_send_buffer: z.number().int().min(64 * 1024, { message: 'must be at least 65536 bytes' }).optional(),
      max_connections: positiveInt.optional(),
      header_timeout: positiveDuration.optional(),
      allow_publish: z.boolean().optional(),
    })
    .optional(),
  webrtc: z
    .strictObject({
      // node-datachannel: the one UDP port of every peer; werift binds per-peer ports (port_range).
      listen: listen.optional(),
      backend: z.enum(WEBRTC_BACKENDS).optional(),
      candidates: z.array(z.string().min(1)).optional(),
      ice_servers: z
        .array(
          z.strictObject({
            urls: stringList('an ICE server URL'),
            username: z.string().optional(),
            credential: z.string().optional(),
          }),
        )
        .optional(),
      port_range: portRange.optional(),
      loopback_only: z.boolean().optional(),
      max_sessions: z.number().int().positive().optional(),
      max_connecting_per_client: positiveInt.optional(),
      timeouts: z
        .strictObject({ connect: positiveDuration.optional(), disconnect: positiveDuration.optional() })
        .optional(),
    })
    .optional(),
  ffmpeg: z
    .strictObject({
      bin: z.string().optional(),
      stop_grace: z.strictObject({ quit: duration.optional(), term: duration.optional() }).optional(),
    })
    .optional(),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).optional() }).optional(),
  stream_defaults: z.strictObject(lifecycleFields).optional(),
  streams: z.record(z.string(), z.unknown()).optional(),
  // go2rtc's preload: stream name → what to keep running ("video&audio", "video=h264", or empty).
  preload: z.record(z.string(), z.string().nullable()).optional(),
});

export type FileConfig = z.output<typeof fileSchema>;
type Lifecycle = z.output<typeof streamObject>;
export type LifecycleOverrides = Partial<Pick<Lifecycle, 'idle_timeout' | 'start_timeout' | 'stall_timeout' | 'backoff' | 'gop_cache' | 'transcode'>>;
