// Bundles src/ into dist/ (what `npm start` and the Docker image run), with the packages it uses,
// for a smaller resident set on a small box (measured in docs/benchmarks.md, fan-out "idle"):
// - plain node rather than the sources through tsx: no loader thread (~40 MB);
// - one file rather than ~200 modules from node_modules: Node's module loader keeps every
//   module's source and bookkeeping alive (~13 MB less at idle);
// - no comments or indentation: V8 keeps the source of a script for as long as it runs (for lazy
//   compilation), and one non-ASCII character in a comment makes all of it two bytes a character.
// Identifiers are kept, so stack traces still read. Code loaded with import() gets its own chunk,
// so werift is read only when it is the backend in use. Left in node_modules: node-datachannel
// (a native addon), ws's optional native helpers, and iconv-lite (body-parser requires it, but
// reads its 0.5 MB of code-page tables only for a non-UTF-8 body: bundled, they would sit in
// memory as source text).
// Two packages are cut to what camrelay reads (each measured in docs/benchmarks.md, "memory"):
// - zod: its entry exports the whole API as one namespace object, which esbuild keeps whole
//   (every locale's messages, JSON Schema conversion: 0.44 MB of 0.58). src/ gets a `z` holding
//   only the names it reads from it (zod's modules have no side effects, so the rest is left out);
// - mime-db: 2,500 types (0.15 MB of source, and an object of that size on the heap) where only
//   those of web/'s files and of the types src/ names are ever looked up.
// usage: node scripts/build.mjs [outdir]   (default dist; it must sit directly in the repository,
// as src/app.ts finds package.json and web/ one level above the code)
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const outdir = path.resolve(root, process.argv[2] ?? 'dist');
if (path.dirname(outdir) !== root) throw new Error(`build: ${outdir} is not a directory directly in ${root}`);
// Chunk names carry hashes: without this, old chunks would pile up.
rmSync(outdir, { recursive: true, force: true });

/** The .ts files under src/, relative to it, with their text. */
function sources() {
  return readdirSync(path.join(root, 'src'), { recursive: true })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(path.join(root, 'src', f), 'utf8'));
}

const zodUsed = {
  name: 'zod-used',
  setup(b) {
    const src = path.join(root, 'src') + path.sep;
    b.onResolve({ filter: /^zod$/ }, (a) => (a.importer.startsWith(src) ? { path: 'z', namespace: 'zod-used' } : undefined));
    b.onResolve({ filter: /^zod-used-names$/ }, () => ({ path: 'names', namespace: 'zod-used' }));
    b.onLoad({ filter: /^z$/, namespace: 'zod-used' }, () => ({ contents: "import * as z from 'zod-used-names'; export { z };", resolveDir: root, loader: 'js' }));
    b.onLoad({ filter: /^names$/, namespace: 'zod-used' }, async () => {
      const api = new Set(Object.keys((await import('zod')).z));
      const used = new Set();
      // Files that import z as a value; a name that is not a value of zod's (z.infer) is a type.
      for (const text of sources().filter((t) => /^import \{[^}]*\bz\b[^}]*\} from 'zod';/m.test(t))) {
        for (const m of text.matchAll(/\bz\.([A-Za-z_$][\w$]*)/g)) if (api.has(m[1])) used.add(m[1]);
      }
      // Resolved from here rather than from src/, this 'zod' is the package itself.
      return { contents: `export { ${[...used].sort().join(', ')} } from 'zod';`, resolveDir: root, loader: 'js' };
    });
  },
};

const mimeUsed = {
  name: 'mime-used',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]mime-db[\\/]db\.json$/ }, (a) => {
      const db = JSON.parse(readFileSync(a.path, 'utf8'));
      const exts = new Set(readdirSync(path.join(root, 'web'), { recursive: true }).map((f) => path.extname(String(f)).slice(1).toLowerCase()).filter(Boolean));
      const named = new Set(sources().flatMap((t) => [...t.matchAll(/['"`]([a-z]+\/[\w.+-]+)['"`;]/g)].map((m) => m[1])));
      // Every type claiming one of web/'s extensions stays, so mime-types picks among the same ones.
      const kept = Object.entries(db).filter(([type, e]) => named.has(type) || (e.extensions ?? []).some((x) => exts.has(x)));
      return { contents: JSON.stringify(Object.fromEntries(kept)), loader: 'json' };
    });
  },
};

await build({
  absWorkingDir: root,
  plugins: [zodUsed, mimeUsed],
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['node-datachannel', 'bufferutil', 'utf-8-validate', 'iconv-lite'],
  // The bundled CommonJS packages call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  splitting: true,
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  outdir,
  sourcemap: true,
  logLevel: 'warning',
});
