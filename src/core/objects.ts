// Live-instance counts per resource-owning class (DESIGN.md rule 6), served at /api/debug/objects.
// Each owner calls created() in its constructor and released() in the first call of its close().

const counts = new Map<string, number>();

export function created(kind: string): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
}

export function released(kind: string): void {
  const n = (counts.get(kind) ?? 0) - 1;
  if (n < 0) throw new Error(`object count for ${kind} went negative: a close() ran twice`);
  counts.set(kind, n);
}

export function liveObjects(): Record<string, number> {
  return Object.fromEntries([...counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
}
