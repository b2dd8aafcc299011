// Edits one entry of config.yaml as text, so every other byte stays as the user wrote it: the
// yaml Document writer re-renders the whole file and loses the alignment of trailing comments
// (`listen: ":1984"          # ...` becomes `listen: ":1984" # ...`) and moves some comments. The
// caller checks that the spliced text parses to the same data as the Document edit, and falls
// back to the Document's text when it does not (flow maps, empty sections, odd layouts).
import { isMap, isSeq, parseDocument, stringify, type Document, type Node, type Pair, type YAMLMap } from 'yaml';

export type EntryValue = string | string[];

/** A scalar as YAML writes it on one line (plain when safe, else quoted). */
function scalarText(s: string): string {
  const t = stringify(s, { lineWidth: 0 }).replace(/\n$/, '');
  return t.includes('\n') ? JSON.stringify(s) : t;
}

const lineStart = (text: string, pos: number): number => text.lastIndexOf('\n', pos - 1) + 1;

/** Where a node's value really ends: a block collection's range runs on over the next line's indentation. */
function valueEnd(text: string, node: Node | null | undefined): number | undefined {
  const r = node?.range;
  if (!r) return undefined;
  return r[0] + text.slice(r[0], r[1]).trimEnd().length;
}

/** The position just after the line holding `pos` (after its newline, or the end of the text). */
function afterLine(text: string, pos: number): number {
  if (pos > 0 && text[pos - 1] === '\n') return pos;
  const nl = text.indexOf('\n', pos);
  return nl < 0 ? text.length : nl + 1;
}

function findPair(map: YAMLMap, key: string): Pair<Node, Node | null> | undefined {
  return (map.items as Pair<Node, Node | null>[]).find((p) => (p.key as { value?: unknown } | null)?.value === key);
}

function blockItems(items: string[], indent: number): string {
  return items.map((i) => `${' '.repeat(indent)}- ${scalarText(i)}`).join('\n');
}

/** `key: value` lines at `indent`, ending with a newline. */
function entryLines(key: string, value: EntryValue, indent: number): string {
  const k = `${' '.repeat(indent)}${scalarText(key)}:`;
  if (typeof value === 'string') return `${k} ${scalarText(value)}\n`;
  return `${k}\n${blockItems(value, indent + 2)}\n`;
}

/** The map at `path` (top-level keys first), when every step is a block map in the text. */
function mapAt(doc: Document, path: string[]): YAMLMap | undefined {
  let node: unknown = doc.contents;
  for (const k of path) {
    if (!isMap(node)) return undefined;
    node = findPair(node, k)?.value ?? undefined;
  }
  return isMap(node) && !node.flow ? node : undefined;
}

/**
 * `text` with path[-1] of the map at path[..-1] set to `value`, other bytes unchanged; undefined
 * when the layout is not one this handles (the caller then re-renders the whole document).
 */
export function spliceSet(text: string, path: string[], value: EntryValue): string | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return undefined;
  const key = path[path.length - 1]!;
  const parentPath = path.slice(0, -1);
  const map = mapAt(doc, parentPath);
  if (!map) {
    // A missing top-level section: appended at the end of the file.
    if (parentPath.length !== 1 || !isMap(doc.contents) || doc.contents.flow || doc.contents.has(parentPath[0])) return undefined;
    const sep = text.length === 0 || text.endsWith('\n') ? '' : '\n';
    return `${text}${sep}${scalarText(parentPath[0]!)}:\n${entryLines(key, value, 2)}`;
  }
  const pair = findPair(map, key);
  const v = pair?.value;
  if (pair && v && v.range) {
    if (isMap(v)) return undefined;
    const start = v.range[0];
    const end = valueEnd(text, v)!;
    let repl: string;
    if (typeof value === 'string') repl = scalarText(value);
    else if (isSeq(v) && !v.flow) repl = blockItems(value, start - lineStart(text, start)).trimStart();
    else repl = `[${value.map(scalarText).join(', ')}]`;
    return text.slice(0, start) + repl + text.slice(end);
  }
  if (pair || map.items.length === 0) return undefined;
  const first = map.items[0]!.key as Node | null;
  const last = map.items[map.items.length - 1]!;
  const lastEnd = valueEnd(text, last.value as Node | null) ?? valueEnd(text, last.key as Node | null);
  if (!first?.range || lastEnd === undefined) return undefined;
  const indent = first.range[0] - lineStart(text, first.range[0]);
  const at = afterLine(text, lastEnd);
  const sep = at === text.length && !text.endsWith('\n') ? '\n' : '';
  return text.slice(0, at) + sep + entryLines(key, value, indent) + text.slice(at);
}

/** `text` without the lines of path[-1] in the map at path[..-1]; undefined when not plainly possible. */
export function spliceDelete(text: string, path: string[]): string | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return undefined;
  const map = mapAt(doc, path.slice(0, -1));
  if (!map) return undefined;
  const pair = findPair(map, path[path.length - 1]!);
  if (!pair) return text;
  const k = pair.key as Node | null;
  const end = valueEnd(text, pair.value) ?? valueEnd(text, k);
  if (!k?.range || end === undefined) return undefined;
  const from = lineStart(text, k.range[0]);
  if (text.slice(from, k.range[0]).trim() !== '') return undefined;
  const rest = text.slice(0, from) + text.slice(afterLine(text, end));
  // The last entry of a top-level section takes the section's own line with it (the caller's
  // Document edit drops the emptied section too).
  if (map.items.length === 1 && path.length === 2 && isMap(doc.contents)) {
    const section = findPair(doc.contents, path[0]!)?.key as Node | null | undefined;
    const at = section?.range?.[0];
    if (at === undefined || at !== lineStart(text, at) || at > from) return undefined;
    const sectionEnd = afterLine(text, valueEnd(text, section)!);
    // Only comments or blank lines between the section's line and the entry's (they stay).
    if (!/^(\s*#.*\n)*\s*$/.test(text.slice(sectionEnd, from))) return undefined;
    return text.slice(0, at) + text.slice(sectionEnd, from) + text.slice(afterLine(text, end));
  }
  return rest;
}
