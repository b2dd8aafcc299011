import { fileSchema } from './file-schema.js';
import { fromZod, valueAt } from './issues.js';
import { setOwn } from './own-property.js';
import { toConfig } from './resolve.js';
import type { Config, ConfigIssue } from './types.js';

// config.yaml: go2rtc's shape where go2rtc has the key, snake_case in the file, camelCase and
// milliseconds in the Config the rest of camrelay reads. Validation reports every problem as a
// ConfigIssue (path + message); load.ts turns the path into a line of the file.
// This module is the entry the rest of camrelay imports; the pieces live beside it:
// types.ts (Config), defaults.ts, fields.ts (shared value types), file-schema.ts (the accepted
// keys), streams.ts and resolve.ts (file → Config), issues.ts (error wording).

export type { Config, ConfigIssue, ConfigPath, IceServer, StreamConfig, WebRtcBackendChoice } from './types.js';
export { LOG_LEVELS, WEBRTC_BACKENDS } from './types.js';
export { DEFAULTS } from './defaults.js';
export { isListenAddress } from './fields.js';
export { describeValue, formatPath } from './issues.js';
export { badStreamName } from './streams.js';

/** `key:` with nothing after it means "use the default", as in most YAML configs. */
function dropNulls(v: unknown, path: string[]): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  // A stream with no value is a publish-only stream (go2rtc): its null must survive.
  const keepNulls = path.length === 1 && path[0] === 'streams';
  const out: Record<string, unknown> = {};
  for (const [k, child] of Object.entries(v)) {
    if (child === null && !keepNulls) continue;
    setOwn(out, k, dropNulls(child, [...path, k]));
  }
  return out;
}

/** Validates the parsed document (after env substitution); the config only when there are no issues. */
export function validateConfig(data: unknown): { config?: Config; issues: ConfigIssue[] } {
  const input = data === null || data === undefined ? {} : dropNulls(data, []);
  // zod's records silently drop a `__proto__` key; say so instead of losing the stream.
  const reserved: ConfigIssue[] = (['streams', 'preload'] as const)
    .filter((section) => Object.hasOwn(Object(valueAt(input, [section])), '__proto__'))
    .map((section) => ({ path: [section, '__proto__'], message: `${section}.__proto__: "__proto__" is reserved and cannot name a stream` }));
  const parsed = fileSchema.safeParse(input);
  if (!parsed.success) return { issues: [...reserved, ...fromZod(parsed.error.issues, input, [])] };
  const issues: ConfigIssue[] = [...reserved];
  const config = toConfig(parsed.data, issues);
  return issues.length > 0 ? { issues } : { config, issues };
}
