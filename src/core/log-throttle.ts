import { log } from './log.js';

/**
 * A warning that an attacker (or a storm) could trigger thousands of times a second: logged at
 * most once per interval, with how many times it happened since the last line.
 */
export class LogThrottle {
  #last = -Infinity;
  #unlogged = 0;

  constructor(
    private readonly msg: string,
    private readonly everyMs = 10_000,
    private readonly level: 'warn' | 'error' | 'info' = 'warn',
  ) {}

  hit(fields: Record<string, unknown> = {}, now = Date.now()): void {
    this.#unlogged++;
    if (now - this.#last < this.everyMs) return;
    log[this.level]({ ...fields, times: this.#unlogged }, this.msg);
    this.#last = now;
    this.#unlogged = 0;
  }
}
