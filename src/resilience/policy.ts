/**
 * Small resilience policies in the shape of cockatiel's (`policy.execute(fn)`):
 * cockatiel 4 needs Node 22, and calcmesh's breaker is driven by health as well as by calls.
 * Each policy does one thing; `upstream/pool.ts` composes them.
 */
import type { CircuitBreaker } from './breaker.js';

export interface Policy {
  execute<T>(fn: () => Promise<T>): Promise<T>;
}

export interface RetryPolicy {
  /** `fn` is given the failure of the attempt before it (undefined the first time). */
  execute<T>(fn: (previous: unknown) => Promise<T>): Promise<T>;
}

/** Runs `fn` again (up to `maxAttempts` in all) while `shouldRetry` says the failure may go elsewhere. */
export function retry(options: { readonly maxAttempts: number; readonly shouldRetry: (error: unknown) => boolean }): RetryPolicy {
  return {
    async execute(fn) {
      let previous: unknown;
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn(previous);
        } catch (error) {
          if (attempt >= options.maxAttempts || !options.shouldRetry(error)) throw error;
          previous = error;
        }
      }
    },
  };
}

/** What an outcome says of the one who answered: it failed, it answered, or nothing (never sent, or cut short by the caller). */
export type Verdict = 'failure' | 'success' | 'inconclusive';

/** Feeds each outcome to a breaker, judged by `judge` (the failure filter); the outcome itself passes unchanged. */
export function circuit(breaker: CircuitBreaker, judge: (error: unknown) => Verdict): Policy {
  return {
    async execute(fn) {
      try {
        const value = await fn();
        breaker.success();
        return value;
      } catch (error) {
        const verdict = judge(error);
        if (verdict === 'failure') breaker.failure();
        else if (verdict === 'success') breaker.success();
        else breaker.inconclusive();
        throw error;
      }
    },
  };
}
