// Durations in config.yaml: a number of seconds (go2rtc's convention) or a string with a unit.
// Everything inside camrelay works in integer milliseconds.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const PATTERN = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/;

export const DURATION_HINT = 'a duration (seconds as a number, or a string like "250ms", "2s", "1.5m", "1h")';

/** Milliseconds, or undefined when `value` is not a duration. Negative values are not durations. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const m = PATTERN.exec(value.trim());
  if (!m) return undefined;
  // A bare numeric string is seconds too: it is what `${IDLE:-30}` substitutes to.
  const unit = (m[2] ?? 's') as keyof typeof UNIT_MS;
  return Math.round(Number(m[1]) * UNIT_MS[unit]);
}
