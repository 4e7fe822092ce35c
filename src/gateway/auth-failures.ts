/**
 * Failed authentication attempts per source address, so that API keys cannot be guessed at line
 * rate: after `max` wrong or missing keys within one window an address is refused (429) until the
 * window ends, whatever key it presents then (otherwise the refusal itself would tell a right
 * guess from a wrong one). The general rate limit cannot do this: it counts per client, and a
 * guesser is no client until a guess is right.
 */
export interface AuthFailureLimiter {
  /** Seconds until this address may try again, or 0 when it may try now. */
  blockedForS(address: string, now?: number): number;
  /** Records a failed attempt from this address. */
  failed(address: string, now?: number): void;
}

/** Addresses tracked per window at most; beyond it the window starts over (memory stays bounded). */
const MAX_ADDRESSES = 100_000;

export function createAuthFailureLimiter(max: number, windowMs = 60_000): AuthFailureLimiter {
  let windowStart = 0;
  let failures = new Map<string, number>();
  const roll = (now: number) => {
    if (now - windowStart >= windowMs || failures.size >= MAX_ADDRESSES) {
      windowStart = now;
      failures = new Map();
    }
  };
  return {
    blockedForS(address, now = Date.now()) {
      roll(now);
      if ((failures.get(address) ?? 0) < max) return 0;
      return Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000));
    },
    failed(address, now = Date.now()) {
      roll(now);
      failures.set(address, (failures.get(address) ?? 0) + 1);
    },
  };
}
