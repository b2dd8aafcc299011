import { z } from 'zod';
import { parseListen } from '../core/listen.js';
import { DURATION_HINT, parseDuration } from './duration.js';
import { describeValue, show } from './issues.js';

// The value types config.yaml's keys share (durations, listen addresses, string-or-list, port
// ranges): each turns what the file holds into the value Config wants, or says why it cannot.

/** A listen address the servers can use (core's parser), without stray whitespace. */
export function isListenAddress(addr: string): boolean {
  if (/\s/.test(addr)) return false;
  try {
    parseListen(addr);
    return true;
  } catch {
    return false;
  }
}

export const duration = z.unknown().transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected ${DURATION_HINT}, got ${show(v)}` });
    return z.NEVER;
  }
  return ms;
});

export const positiveDuration = duration.refine((ms) => ms > 0, { message: 'must be more than 0' });

export const positiveInt = z.number().int().positive();

export const listen = z.string().superRefine((v, ctx) => {
  if (v !== '' && !isListenAddress(v)) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is not a listen address (":port", "host:port", "[v6]:port", or "" to disable)`,
    });
  }
});

/** A string or a list of strings, each non-empty (go2rtc takes both for `urls`, stream sources). */
export const stringList = (what: string) =>
  z.unknown().transform((v, ctx) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) {
      const got = v === undefined ? 'nothing (the key is missing)' : describeValue(v);
      ctx.addIssue({ code: 'custom', message: `expected ${what} or a list of them, got ${got}` });
      return z.NEVER;
    }
    list.forEach((item: unknown, i) => {
      if (typeof item !== 'string' || item.trim() === '') {
        ctx.addIssue({
          code: 'custom',
          path: typeof v === 'string' ? [] : [i],
          message: `expected ${what}, got ${typeof item === 'string' ? 'an empty string' : describeValue(item)}`,
        });
      }
    });
    return list as string[];
  });

export const portRange = z.unknown().transform((v, ctx): [number, number] => {
  let pair: unknown[] | undefined;
  if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(v);
    pair = m ? [Number(m[1]), Number(m[2])] : undefined;
  } else if (Array.isArray(v) && v.length === 2) {
    pair = v;
  }
  const [min, max] = pair ?? [];
  const isPort = (p: unknown): p is number => typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
  if (!isPort(min) || !isPort(max) || min > max) {
    ctx.addIssue({
      code: 'custom',
      message: `expected "min-max" or [min, max] with 1 <= min <= max <= 65535, got ${Array.isArray(v) ? JSON.stringify(v) : show(v)}`,
    });
    return z.NEVER;
  }
  return [min, max];
});
