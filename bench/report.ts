// docs/benchmarks.md is written by more than one tool (npm run bench, npm run soak): each owns
// named sections between markers and replaces only those, so one run never erases another's
// figures. The file is replaced atomically.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BENCHMARKS_MD = path.resolve(import.meta.dirname, '..', 'docs', 'benchmarks.md');

const HEADER = `# Benchmarks

Every figure below was produced by the command named in its section, on the machine it names.
Sections are rewritten by their own command; the rest of the file is kept.
`;

/** Replaces (or appends) the section `name` of docs/benchmarks.md with `markdown`. */
export function writeSection(name: string, markdown: string, file = BENCHMARKS_MD): void {
  const begin = `<!-- begin:${name} -->`;
  const end = `<!-- end:${name} -->`;
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, file);
}

/** One line naming the machine, for every section. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.`;
}

/** Markdown table from a header row and data rows. */
export function table(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (r: readonly (string | number)[]) => `| ${r.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Percentile (0–100) by nearest rank of an unsorted sample. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
