import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';

export interface FfmpegBinary {
  path: string;
  origin: 'config' | 'PATH' | 'npm package';
  /** From the first line of `ffmpeg -version`, e.g. "5.1.9-0+deb12u1". */
  version: string;
}

export interface FindOptions {
  /** The PATH to search (default process.env.PATH); tests pass one without ffmpeg. */
  path?: string;
  /** Where the optional npm package is resolved from (default this module); tests point it elsewhere. */
  npmFrom?: string;
}

const NPM_PACKAGE = '@ffmpeg-installer/ffmpeg';

/** Runs `<bin> -version` and returns the version word of its first line. */
function versionOf(bin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-version'], { timeout: 10_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) {
        reject(err);
        return;
      }
      const first = stdout.split('\n', 1)[0] ?? '';
      const m = /^ffmpeg version (\S+)/.exec(first);
      if (!m?.[1]) reject(new Error(`unexpected -version output: ${JSON.stringify(first.slice(0, 100))}`));
      else resolve(m[1]);
    });
  });
}

function onPath(name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** The binary of the optional npm package, or the reason it is not usable. */
function fromNpm(from: string): { path: string } | { why: string } {
  try {
    const require = createRequire(from);
    // The package throws a plain string when its platform binary is missing.
    const pkg = require(NPM_PACKAGE) as { path?: unknown };
    return typeof pkg.path === 'string' ? { path: pkg.path } : { why: 'it has no path' };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    return { why: code === 'MODULE_NOT_FOUND' ? 'not installed' : e instanceof Error ? e.message : String(e) };
  }
}

const reason = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'not found';
  if (code === 'EACCES') return 'not executable';
  return (e instanceof Error ? e.message : String(e)).split('\n', 1)[0] ?? '';
};

/**
 * Which ffmpeg to run: `ffmpeg.bin` from config if set (and then only that: a configured binary
 * that does not run is a mistake to report, not to paper over), else `ffmpeg` on PATH, else the
 * binary of the optional `@ffmpeg-installer/ffmpeg` package.
 */
export async function findFfmpeg(configured?: string, opts: FindOptions = {}): Promise<FfmpegBinary> {
  if (configured) {
    try {
      return { path: configured, origin: 'config', version: await versionOf(configured) };
    } catch (e) {
      throw new Error(`ffmpeg.bin "${configured}" does not run: ${reason(e)}`);
    }
  }
  const tried: string[] = [];
  const pathVar = opts.path ?? process.env.PATH ?? '';
  const found = onPath('ffmpeg', pathVar);
  if (found) {
    try {
      return { path: found, origin: 'PATH', version: await versionOf(found) };
    } catch (e) {
      tried.push(`${found} (on PATH): ${reason(e)}`);
    }
  } else {
    tried.push(`"ffmpeg" on PATH (${pathVar || 'empty'}): not found`);
  }
  const npm = fromNpm(opts.npmFrom ?? import.meta.url);
  if ('path' in npm) {
    try {
      return { path: npm.path, origin: 'npm package', version: await versionOf(npm.path) };
    } catch (e) {
      tried.push(`${NPM_PACKAGE} (${npm.path}): ${reason(e)}`);
    }
  } else {
    tried.push(`${NPM_PACKAGE}: ${npm.why}`);
  }
  throw new Error(`no usable ffmpeg; tried ${tried.join('; ')}. Install ffmpeg or set ffmpeg.bin in the config.`);
}
