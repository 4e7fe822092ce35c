/**
 * A warning that may fire on every request or scrape (a failing queue read in /readyz, /v1/status,
 * /metrics) is logged once per interval, with how many were suppressed in between: visible in the
 * logs, never a flood.
 */
import type { Logger } from '../shared/logger.js';

export function createThrottledWarn(logger: Logger, intervalMs = 10_000, now: () => number = Date.now) {
  const last = new Map<string, { at: number; suppressed: number }>();
  // Returns undefined so that it can stand in a `.catch()` whose value means "no answer".
  return (message: string, error: unknown): undefined => {
    const entry = last.get(message);
    const at = now();
    if (entry && at - entry.at < intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    logger.warn({ err: error, suppressed: entry?.suppressed ?? 0 }, message);
    last.set(message, { at, suppressed: 0 });
    return undefined;
  };
}

export type ThrottledWarn = ReturnType<typeof createThrottledWarn>;
