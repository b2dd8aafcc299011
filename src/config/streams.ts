import type { StreamSettings } from '../core/stream.js';
import { DEFAULT_GOP_CACHE } from '../core/gop-cache.js';
import { DEFAULTS } from './defaults.js';
import { stringList } from './fields.js';
import { streamObject, type LifecycleOverrides } from './file-schema.js';
import { formatPath, fromZod } from './issues.js';
import { setOwn } from './own-property.js';
import type { ConfigIssue, ConfigPath, StreamConfig } from './types.js';

// The `streams:` section: each entry is a source URL, a list of them, a mapping with sources and
// its own lifecycle settings, or nothing (publish-only); every form resolves to a StreamConfig.

export function settings(defaults: StreamSettings, o: LifecycleOverrides): StreamSettings {
  return {
    idleTimeout: o.idle_timeout ?? defaults.idleTimeout,
    startTimeout: o.start_timeout ?? defaults.startTimeout,
    stallTimeout: o.stall_timeout ?? defaults.stallTimeout ?? DEFAULTS.stream.stallTimeout,
    transcode: o.transcode ?? defaults.transcode ?? DEFAULTS.stream.transcode,
    backoff: {
      base: o.backoff?.base ?? defaults.backoff.base,
      max: o.backoff?.max ?? defaults.backoff.max,
      stableAfter: o.backoff?.stable_after ?? defaults.backoff.stableAfter,
    },
    gopCache: {
      maxBytes: o.gop_cache?.max_bytes ?? defaults.gopCache?.maxBytes ?? DEFAULT_GOP_CACHE.maxBytes,
      maxDuration: o.gop_cache?.max_duration ?? defaults.gopCache?.maxDuration ?? DEFAULT_GOP_CACHE.maxDuration,
    },
  };
}

export function checkBackoff(s: StreamSettings, path: ConfigPath, issues: ConfigIssue[]): void {
  if (s.backoff.max < s.backoff.base) {
    issues.push({
      path: [...path, 'backoff'],
      message: `${formatPath([...path, 'backoff'])}: max (${s.backoff.max} ms) is less than base (${s.backoff.base} ms)`,
    });
  }
}

/** Why a stream name is unusable in a URL path, or undefined when it is fine. */
export function badStreamName(name: string): string | undefined {
  if (name === '') return 'a stream name must not be empty';
  // eslint-disable-next-line no-control-regex
  if (/[/\s\u0000-\u001f\u007f]/.test(name)) return `stream name ${JSON.stringify(name)} must not contain "/", whitespace or control characters`;
  return undefined;
}

export function parseStreams(
  raw: Record<string, unknown>,
  defaults: StreamSettings,
  issues: ConfigIssue[],
): Record<string, StreamConfig> {
  const streams: Record<string, StreamConfig> = {};
  for (const [name, value] of Object.entries(raw)) {
    const path: ConfigPath = ['streams', name];
    const nameProblem = badStreamName(name);
    if (nameProblem) {
      issues.push({ path, message: nameProblem });
      continue;
    }
    if (value === null || value === undefined) {
      setOwn(streams, name, { sources: [], settings: settings(defaults, {}) });
      continue;
    }
    const isObject = typeof value === 'object' && !Array.isArray(value);
    const parsed = isObject ? streamObject.safeParse(value) : stringList('a source URL').safeParse(value);
    if (!parsed.success) {
      issues.push(...fromZod(parsed.error.issues, value, path));
      continue;
    }
    if (Array.isArray(parsed.data)) {
      setOwn(streams, name, { sources: parsed.data, settings: settings(defaults, {}) });
    } else {
      const s = settings(defaults, parsed.data);
      checkBackoff(s, path, issues);
      setOwn(streams, name, { sources: parsed.data.sources, settings: s });
    }
  }
  return streams;
}
