// CLI entry: flags, config, ffmpeg discovery, start, graceful shutdown on SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { endLog, log, setLogLevel } from './core/log.js';
import { errorMessage } from './core/errors.js';
import { ConfigError, loadConfig } from './config/load.js';
import { findFfmpeg } from './process/ffmpeg-binary.js';
import { installLastResort } from './process/last-resort.js';
import { fitConnectionCap, watchFds } from './process/fd-limit.js';
import { Camrelay, VERSION } from './app.js';

/** The longest an exit waits for the last log lines to reach stdout (a stdout nobody reads gets none). */
const LOG_END_MS = 1000;

const USAGE = `usage: camrelay [--config FILE] [--log-level LEVEL]
  -c, --config FILE      config file (default: config.yaml)
  -l, --log-level LEVEL  trace|debug|info|warn|error (overrides log.level)
  -v, --version          print the version`;

async function main(): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      options: {
        config: { type: 'string', short: 'c', default: 'config.yaml' },
        'log-level': { type: 'string', short: 'l' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`camrelay: ${errorMessage(e)}\n${USAGE}\n`);
    return 2;
  }
  if (flags.help) return void process.stdout.write(USAGE + '\n'), 0;
  if (flags.version) return void process.stdout.write(VERSION + '\n'), 0;

  const configPath = flags.config ?? 'config.yaml';
  let config;
  try {
    config = loadConfig(configPath);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`camrelay: config error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  setLogLevel(flags['log-level'] ?? config.log.level);
  log.info({ version: VERSION, config: configPath }, 'camrelay starting');
  // From here on a bug in one handler is logged and counted, not the end of every stream.
  // The handler has logged why; 70 is EX_SOFTWARE.
  installLastResort(() => void endLog(LOG_END_MS).then(() => process.exit(70)));
  config.api.maxConnections = fitConnectionCap(config.api.maxConnections, config.rtsp.maxConnections);
  watchFds();

  const ffmpeg = await findFfmpeg(config.ffmpeg.bin);
  log.info({ path: ffmpeg.path, origin: ffmpeg.origin, version: ffmpeg.version }, `using ffmpeg from ${ffmpeg.origin}`);

  const app = await Camrelay.start(config, { configPath, ffmpegBin: ffmpeg.path });
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const hard = setTimeout(() => {
    log.error('shutdown took over 10 s; exiting anyway');
    void endLog(LOG_END_MS).then(() => process.exit(1));
  }, 10_000);
  hard.unref();
  await app.close();
  log.info('stopped');
  return 0;
}

main().then(
  async (code) => {
    await endLog(LOG_END_MS);
    // Everything we own is closed by now; exiting here also ends any timer a library left behind.
    process.exit(code);
  },
  async (e: unknown) => {
    log.fatal({ err: errorMessage(e) }, 'camrelay failed to start');
    await endLog(LOG_END_MS);
    process.exit(1);
  },
);
