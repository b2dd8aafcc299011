import type { Response } from 'express';
import { ConfigError } from '../config/load.js';
import { ConfigReadOnlyError } from '../config/save.js';
import { errorMessage } from '../core/errors.js';
import { maskCredentials } from '../core/log.js';
import { sendError } from './http-error.js';

/**
 * A change the API could not save to config.yaml: 400 when the result would not load, 409 when
 * the user made the file read-only (a state of the server the caller can have fixed, not a bug),
 * else 500. The message names the file and never a camera password.
 */
export function sendSaveError(res: Response, e: unknown): void {
  const status = e instanceof ConfigError ? 400 : e instanceof ConfigReadOnlyError ? 409 : 500;
  sendError(res, status, `saving config: ${maskCredentials(errorMessage(e))}`);
}
