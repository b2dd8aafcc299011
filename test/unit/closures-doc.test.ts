// docs/closures.md must list exactly the object kinds the code creates (the objectKind each Owned
// subclass passes to its constructor), and each per-class section must name a file that holds
// that class and kind: a renamed class or file, or a new kind, fails here until the doc follows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'closures.md'), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** class name → its kind, for every class that extends Owned directly. */
export function ownedKinds(source: string): Map<string, string> {
  const kinds = new Map<string, string>();
  // Each class body runs to the next class declaration; its first super('…') is the kind.
  const parts = source.split(/\bclass\s+/).slice(1);
  for (const part of parts) {
    const head = /^(\w+)\s*(?:<[^{]*?>)?\s+extends\s+Owned\b/.exec(part);
    if (!head) continue;
    const kind = /\bsuper\(\s*'([^']+)'\s*\)/.exec(part);
    assert.ok(kind, `class ${head[1]} extends Owned but passes no literal kind to super()`);
    kinds.set(head[1]!, kind[1]!);
  }
  return kinds;
}

const codeKinds = new Map<string, { cls: string; file: string }>();
for (const file of sourceFiles(join(root, 'src'))) {
  for (const [cls, kind] of ownedKinds(readFileSync(file, 'utf8'))) codeKinds.set(kind, { cls, file });
}

function treeKinds(): Set<string> {
  const tree = /## Tree\n+```\n([\s\S]*?)```/.exec(doc);
  assert.ok(tree, 'docs/closures.md has a "## Tree" section with a code block');
  return new Set([...tree[1]!.matchAll(/"([A-Z]\w*)"/g)].map((m) => m[1]!));
}

const headings = [...doc.matchAll(/^### (\w+) \(([^)\s]+)\) — "(\w+)"$/gm)].map((m) => ({ cls: m[1]!, file: m[2]!, kind: m[3]! }));

test('the scan finds a kind, a generic class and one that is not Owned', { timeout: 5000 }, () => {
  const found = ownedKinds(`class A extends Owned {\n constructor() { super('KindA'); } }\nclass B<T extends X> extends Owned<Ev> { constructor() { super('KindB'); } }\nclass E extends Error { constructor() { super('not a kind'); } }`);
  assert.deepEqual([...found], [['A', 'KindA'], ['B', 'KindB']]);
  assert.ok(codeKinds.size >= 20, `only ${codeKinds.size} kinds found in src/: the scan is broken`);
});

test('the tree in docs/closures.md lists exactly the kinds the code creates', { timeout: 5000 }, () => {
  const listed = treeKinds();
  const created = new Set(codeKinds.keys());
  const missing = [...created].filter((k) => !listed.has(k)).map((k) => `${k} (${codeKinds.get(k)!.cls})`);
  const stale = [...listed].filter((k) => !created.has(k));
  assert.deepEqual({ missing, stale }, { missing: [], stale: [] }, 'missing: created by the code but not in the tree; stale: in the tree but created nowhere');
});

test('every kind has its section, naming the class and the file that creates it', { timeout: 5000 }, () => {
  const byKind = new Map(headings.map((h) => [h.kind, h]));
  assert.deepEqual([...codeKinds.keys()].filter((k) => !byKind.has(k)), [], 'kinds without a "### Class (file) — "Kind"" section');
  for (const h of headings) {
    const made = codeKinds.get(h.kind);
    assert.ok(made, `section ${h.cls}: no class creates kind "${h.kind}"`);
    assert.equal(made.cls, h.cls, `kind "${h.kind}" is created by class ${made.cls}, the section names ${h.cls}`);
    assert.ok(existsSync(join(root, h.file)), `section ${h.cls}: ${h.file} does not exist`);
    assert.equal(join(root, h.file), made.file, `class ${h.cls} is in ${made.file}, the section names ${h.file}`);
  }
});
