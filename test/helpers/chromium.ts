// Debian's Chromium driven by playwright-core, for the end-to-end tests of web/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** A reason to skip browser tests, or false when Chromium is there (tests must never pass without it). */
export const chromiumSkip: string | false = existsSync(CHROMIUM) ? false : `chromium not installed (${CHROMIUM})`;

/** The flags every test's Chromium runs with (chromium-mic.ts adds media capture's). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--autoplay-policy=no-user-gesture-required',
];

export class Chromium {
  private constructor(
    readonly context: BrowserContext,
    readonly pid: number,
    private readonly dir: string,
  ) {}

  /** Chromium on a fresh user-data dir. */
  static async launch(): Promise<Chromium> {
    const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-chromium-'));
    const before = new Set(browserPids());
    let context: BrowserContext;
    try {
      context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS], viewport: { width: 1280, height: 800 } });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    // The persistent context hides its process: it is our child that appeared with it.
    const pid = browserPids().find((p) => !before.has(p)) ?? 0;
    return new Chromium(context, pid, dir);
  }

  async page(): Promise<Page> {
    const page = await this.context.newPage();
    page.on('console', (m) => {
      if (process.env.E2E_CONSOLE) console.log(`[browser ${m.type()}] ${m.text()}`);
    });
    return page;
  }

  /** Kills Chromium outright (its whole process group), as a crash or `kill -9` would. */
  kill(): void {
    if (!this.pid) throw new Error('chromium pid unknown');
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      process.kill(this.pid, 'SIGKILL');
    }
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** PIDs of this process's Chromium children. */
function browserPids(): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, comm]) => comm !== undefined && /chrom/.test(comm))
      .map(([pid]) => Number(pid));
  } catch {
    return [];
  }
}
