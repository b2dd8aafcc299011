import type { z } from 'zod';
import type { ConfigIssue, ConfigPath } from './types.js';

// The wording of validation errors: zod's issues become ConfigIssues whose messages name the key
// path and what the file held, in YAML's words (mapping, list) rather than JavaScript's.

/** What a value looks like, in the words error messages use. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  return typeof v;
}

/** A value quoted in a message: strings and numbers as written, anything else by its kind. */
export function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' ? String(v) : describeValue(v);
}

/** `webrtc.timeouts.connect`, `streams.cam2[0]`. */
export function formatPath(path: ConfigPath): string {
  let s = '';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : s === '' ? k : `.${k}`;
  return s;
}

export function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

const EXPECTED_WORDS: Record<string, string> = { object: 'mapping', record: 'mapping', array: 'list' };

/** zod's issues for `data` (found at `prefix` in the document) as ConfigIssues. */
export function fromZod(issues: readonly z.core.$ZodIssue[], data: unknown, prefix: ConfigPath): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path.map((k) => (typeof k === 'number' ? k : String(k)))];
    const where = formatPath(path) || 'the document';
    switch (iss.code) {
      case 'unrecognized_keys':
        for (const key of iss.keys) {
          out.push({ path: [...path, key], message: `unknown key "${formatPath([...path, key])}"` });
        }
        break;
      case 'invalid_type': {
        const actual = valueAt(data, path.slice(prefix.length));
        const expected = EXPECTED_WORDS[iss.expected] ?? iss.expected;
        out.push({
          path,
          message: actual === undefined ? `${where}: missing (expected ${expected})` : `${where}: expected ${expected}, got ${describeValue(actual)}`,
        });
        break;
      }
      case 'invalid_value':
        out.push({
          path,
          message: `${where}: expected one of ${iss.values.join(', ')}, got ${show(valueAt(data, path.slice(prefix.length)))}`,
        });
        break;
      default:
        out.push({ path, message: `${where}: ${iss.message}` });
    }
  }
  return out;
}
