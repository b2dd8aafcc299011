// GET /metrics read with a real Prometheus text-format parser, as the metrics test does.
import assert from 'node:assert/strict';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import type { CamrelayProcess } from './camrelay-process.js';
import { request } from './http.js';

export type Scrape = Map<string, PromFamily>;

export async function scrape(app: CamrelayProcess): Promise<Scrape> {
  const r = await request(`${app.base}/metrics`);
  assert.equal(r.status, 200);
  return new Map(parsePrometheusTextFormat(r.text).map((f) => [f.name, f]));
}

/** The value of the sample of `name` whose labels include `labels`; 0 when there is none. */
export function metric(m: Scrape, name: string, labels: Record<string, string> = {}): number {
  const f = m.get(name);
  assert.ok(f, `metric ${name} exposed`);
  const s = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return s ? Number(s.value) : 0;
}
