import type { WebhookClaimOptions } from './types.js';

/**
 * How long a webhook delivery handed out `attempts` times waits before it is handed out again:
 * the retry time doubled per failure, at most a minute, and never less than one attempt may take
 * (so that a slow attempt still running is not duplicated). webhook-claim.lua repeats this rule.
 */
export function webhookBackoffMs(attempts: number, options: Pick<WebhookClaimOptions, 'retryMs' | 'attemptMs'>): number {
  return Math.max(Math.min(options.retryMs * 2 ** (attempts - 1), 60_000), options.attemptMs);
}
