import { once, type EventEmitter } from 'node:events';

/** Polls `check` until it returns a truthy value or `ms` passes; for state seen only by looking (ps, /proc). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, ms = 5000, everyMs = 20): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (let i = 0; ; i++) {
    try {
      const v = await check();
      if (v) return v as NonNullable<Awaited<T>>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits for one event with a deadline. */
export async function waitEvent<T extends unknown[]>(em: EventEmitter, event: string, ms = 5000): Promise<T> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(new Error(`timed out after ${ms} ms waiting for '${event}'`)), ms);
  try {
    return (await once(em, event, { signal: ac.signal })) as T;
  } catch (e) {
    throw ac.signal.aborted ? ac.signal.reason : e;
  } finally {
    clearTimeout(t);
  }
}

/** `p`, or a rejection naming `what` once `ms` have passed without it settling. */
export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(t);
  }
}
