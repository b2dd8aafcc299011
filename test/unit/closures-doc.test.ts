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

interface ClassDecl {
  name: string;
  parent: string;
  /** The literal its constructor passes to super(), if any. */
  literal: string | undefined;
  file: string;
}

/** Every class declaration with its parent and its first super('…') literal. */
export function classDecls(source: string, file = ''): ClassDecl[] {
  // Each class body runs to the next class declaration.
  return source
    .split(/\bclass\s+/)
    .slice(1)
    .flatMap((part) => {
      const head = /^(\w+)\s*(?:<[^{]*?>)?\s+extends\s+(\w+)/.exec(part);
      if (!head) return [];
      return [{ name: head[1]!, parent: head[2]!, literal: /\bsuper\(\s*'([^']+)'\s*\)/.exec(part)?.[1], file }];
    });
}

/** kind → the class that creates it, for every class that descends from Owned and names its kind. */
export function ownedKinds(decls: readonly ClassDecl[]): Map<string, { cls: string; file: string }> {
  const owned = new Set(['Owned']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const d of decls) if (owned.has(d.parent) && !owned.has(d.name)) grew = owned.add(d.name) !== undefined;
  }
  const kinds = new Map<string, { cls: string; file: string }>();
  for (const d of decls) {
    if (!owned.has(d.name)) continue;
    // An abstract base (PeerBase) passes its subclass's kind on: only a literal is a kind.
    if (d.literal) kinds.set(d.literal, { cls: d.name, file: d.file });
  }
  return kinds;
}

const codeKinds = ownedKinds(sourceFiles(join(root, 'src')).flatMap((f) => classDecls(readFileSync(f, 'utf8'), f)));

function treeKinds(): Set<string> {
  const tree = /## Tree\n+```\n([\s\S]*?)```/.exec(doc);
  assert.ok(tree, 'docs/closures.md has a "## Tree" section with a code block');
  return new Set([...tree[1]!.matchAll(/"([A-Z]\w*)"/g)].map((m) => m[1]!));
}

const headings = [...doc.matchAll(/^### (\w+) \(([^)\s]+)\) — "(\w+)"$/gm)].map((m) => ({ cls: m[1]!, file: m[2]!, kind: m[3]! }));

test('the scan finds kinds of direct and indirect subclasses, generic or not, and only of Owned', { timeout: 5000 }, () => {
  const src = [
    "class A extends Owned {\n constructor() { super('KindA'); } }",
    "abstract class Base extends Owned<Ev> {}",
    "class B<T extends X> extends Base { constructor() { super('KindB'); } }",
    "class E extends Error { constructor() { super('not a kind'); } }",
  ].join('\n');
  assert.deepEqual([...ownedKinds(classDecls(src))].map(([k, v]) => [k, v.cls]), [['KindA', 'A'], ['KindB', 'B']]);
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
