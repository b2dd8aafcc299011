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
// usage: node scripts/build.mjs [outdir]   (default dist; it must sit directly in the repository,
// as src/app.ts finds package.json and web/ one level above the code)
import { rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const outdir = path.resolve(root, process.argv[2] ?? 'dist');
if (path.dirname(outdir) !== root) throw new Error(`build: ${outdir} is not a directory directly in ${root}`);
// Chunk names carry hashes: without this, old chunks would pile up.
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
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
