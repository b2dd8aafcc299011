// Debian's Chromium with a fake microphone, for the e2e tests of the page's talk button: the
// flags of test/helpers/chromium.ts plus those of media capture without a person or a device.
// --use-fake-ui-for-media-stream allows getUserMedia without a prompt (the page must still ask
// only on a press: the tests count its calls); --use-fake-device-for-media-stream is a fake
// microphone, playing `wav` (looped) with --use-file-for-fake-audio-capture when given, else a
// beep; --ignore-certificate-errors takes the test's self-signed certificate;
// --host-resolver-rules makes names of `hosts` resolve to 127.0.0.1, for an origin that is not
// "potentially trustworthy" (http:// on a name other than localhost) without leaving loopback.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';

export interface MicChromiumOptions {
  /** A WAV file the fake microphone plays in a loop. */
  wav?: string;
  /** Host names that resolve to 127.0.0.1. */
  hosts?: string[];
}

export function micChromiumArgs(o: MicChromiumOptions = {}): string[] {
  return [
    ...CHROMIUM_ARGS,
    '--ignore-certificate-errors',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    ...(o.wav ? [`--use-file-for-fake-audio-capture=${o.wav}`] : []),
    ...(o.hosts?.length ? [`--host-resolver-rules=${o.hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`] : []),
  ];
}

export class MicChromium {
  private constructor(
    readonly context: BrowserContext,
    private readonly dir: string,
  ) {}

  static async launch(o: MicChromiumOptions = {}): Promise<MicChromium> {
    if (o.wav && !existsSync(o.wav)) throw new Error(`no such wav: ${o.wav}`);
    const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-chromium-mic-'));
    try {
      const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: micChromiumArgs(o), viewport: { width: 1280, height: 800 } });
      return new MicChromium(context, dir);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async page(): Promise<Page> {
    const page = await this.context.newPage();
    page.on('console', (m) => {
      if (process.env.E2E_CONSOLE) console.log(`[browser ${m.type()}] ${m.text()}`);
    });
    return page;
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
