import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { MissingEnvError, substituteEnv } from './env.js';
import { formatPath, validateConfig, type Config, type ConfigIssue, type ConfigPath } from './schema.js';

/** A config that cannot be used. The message starts with `file:line:` so editors can jump to it. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

function keyOf(pairKey: unknown): string {
  return isScalar(pairKey) ? String(pairKey.value) : String(pairKey);
}

/** Replaces `${NAME}` in every string scalar, in place; an unset variable is an error at its line. */
function substituteAll(doc: Document, lines: LineCounter, file: string, env: NodeJS.ProcessEnv): void {
  const walk = (node: unknown, path: ConfigPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) walk(pair.value, [...path, keyOf(pair.key)]);
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === 'string') {
      try {
        node.value = substituteEnv(node.value, env);
      } catch (e) {
        if (!(e instanceof MissingEnvError)) throw e;
        throw new ConfigError(file, `${where(file, lines, node)}: ${formatPath(path)}: ${e.message}`);
      }
    }
    // Aliases are left alone: they resolve to their anchor, which was substituted where it stands.
  };
  walk(doc.contents, []);
}

function where(file: string, lines: LineCounter, node: Node | null | undefined): string {
  const offset = node?.range?.[0];
  return offset === undefined ? file : `${file}:${lines.linePos(offset).line}`;
}

/**
 * The node an issue is reported at: for a mapping entry its key (where people look, and where an
 * unknown key is), for a list item the item; when the path runs out, the deepest part that exists.
 */
function nodeFor(doc: Document, path: ConfigPath): Node | undefined {
  let node: unknown = doc.contents;
  let found: Node | undefined = isMap(node) || isSeq(node) || isScalar(node) ? (node as Node) : undefined;
  for (const step of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => keyOf(p.key) === String(step));
      if (!pair) return found;
      if (isScalar(pair.key)) found = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof step === 'number') {
      const item: unknown = node.items[step];
      if (!isMap(item) && !isSeq(item) && !isScalar(item)) return found;
      found = item as Node;
      node = item;
    } else {
      return found;
    }
  }
  return found;
}

function describeIssues(file: string, doc: Document, lines: LineCounter, issues: ConfigIssue[]): string {
  return issues.map((iss) => `${where(file, lines, nodeFor(doc, iss.path))}: ${iss.message}`).join('\n');
}

/**
 * The first byte of a config file while ConfigStore writes it in place (src/config/save.ts): no
 * YAML text starts with NUL, and the yaml parser would accept it, so it is refused here by name.
 */
export const IN_PLACE_MARK = Buffer.from([0]);

/** Parses and validates config.yaml text. `file` is only used in messages. Throws ConfigError. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  if (text.startsWith(IN_PLACE_MARK.toString('latin1'))) {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.*.tmp`);
    throw new ConfigError(
      file,
      `${file}:1:1: a save through the API was interrupted while camrelay wrote the file in place: its first byte is NUL and the rest is the new text. ` +
        `The complete new text may be in ${tmp} (or next to the file this one links to); else put back the first character (often "#" or the first letter of a key).`,
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) {
    const { line, col } = lines.linePos(syntax.pos[0]);
    throw new ConfigError(file, `${file}:${line}:${col}: ${syntax.message}`);
  }
  substituteAll(doc, lines, file, env);
  const { config, issues } = validateConfig(doc.toJS());
  if (!config) throw new ConfigError(file, describeIssues(file, doc, lines, issues));
  return config;
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new ConfigError(file, `${file}: ${why}`);
  }
  return parseConfig(text, file);
}
