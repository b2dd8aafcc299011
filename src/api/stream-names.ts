// The names the API accepts for a stream it creates. config.yaml may name a stream anything its
// schema allows (badStreamName); through the API a name must also not read as something else
// where a source names it: `ffmpeg:<name>` is a file path, a `device?`/`virtual?` input or a
// stream, depending on what exists. A stream reference from the API is bound to a stream when
// it is saved (routes-streams.ts), and names that also parse as paths or devices are refused
// here, so no sequence of API calls turns one into the other.
import { badStreamName } from '../config/schema.js';

/** Keys that, as a property name of a plain object, reach its prototype. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** ffmpeg inputs written `<kind>?<options>` (sources/ffmpeg-url.ts parseInput). */
const QUERY_INPUTS = ['device?', 'virtual?', 'tts?'];

/** Why `name` cannot be a stream name given through the API, or undefined when it can. */
export function badApiStreamName(name: string): string | undefined {
  const bad = badStreamName(name);
  if (bad) return bad;
  const quoted = JSON.stringify(name);
  if (name.includes('${')) return `stream name ${quoted} must not contain "\${" (environment variables are substituted only in config.yaml)`;
  if (PROTOTYPE_KEYS.has(name)) return `stream name ${quoted} is reserved`;
  if (name.includes('\\') || name.startsWith('.') || name.startsWith('~')) {
    return `stream name ${quoted} reads as a file path: through the API a name must not contain "/" or a backslash, nor start with "." or "~"`;
  }
  if (QUERY_INPUTS.some((p) => name.startsWith(p))) {
    return `stream name ${quoted} reads as an ffmpeg ${name.slice(0, name.indexOf('?'))}? input: such names are accepted only from config.yaml`;
  }
  return undefined;
}
