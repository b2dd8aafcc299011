// Every line camrelay's logger writes in this process, kept as parsed JSON so a test can assert
// what was logged (a warning once, the named error). Replaces the root logger for the process.
import { Writable } from 'node:stream';
import { pino, type Level } from 'pino';
import { setRootLogger } from '../../src/core/log.js';

export function captureLog(level: Level = 'info'): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  setRootLogger(
    pino(
      { level },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          // One chunk may hold several lines.
          for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
          cb();
        },
      }),
    ),
  );
  return lines;
}
