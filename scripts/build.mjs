// Bundles src/ into dist/ (what `npm start` and the Docker image run). Running the bundle with
// plain node, rather than the sources through tsx, saves tsx's loader thread: ~40 MB of resident
// memory and a second or so of start-up on a small box. Packages stay in node_modules
// (`packages: 'external'`), and code loaded with import() gets its own chunk, so werift is still
// read only when it is the backend in use.
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
  packages: 'external',
  splitting: true,
  outdir,
  sourcemap: true,
  logLevel: 'warning',
});
