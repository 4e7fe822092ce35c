/**
 * A queue nobody drains: tasks ready for longer than a lease while no consumer has claimed for
 * as long. That is what a service pointed at another queue (another CALC_DATA_DIR, another
 * Redis) looks like from the gateway, while everything else looks healthy.
 */
import type { Logger } from '../shared/logger.js';
import type { ServiceOp } from '../shared/operations.js';
import type { DurableQueue, OperationStats } from '../queue/types.js';

export interface Stall {
  readonly stalled: boolean;
  /** Why, for a person; absent when not stalled. */
  readonly stallReason?: string;
}

export function stallOf(stats: OperationStats, leaseMs: number, now: number): Stall {
  const waiting = stats.depth - stats.inFlight;
  const idleMs = stats.lastClaimAt === undefined ? Infinity : now - stats.lastClaimAt;
  if (waiting <= 0 || stats.oldestAgeMs <= leaseMs || idleMs <= leaseMs) return { stalled: false };
  const since = stats.lastClaimAt === undefined ? 'no consumer has ever claimed from it' : `no consumer has claimed for ${Math.round(idleMs / 1000)} s`;
  return {
    stalled: true,
    stallReason: `${waiting} task(s) waiting, the oldest ${Math.round(stats.oldestAgeMs / 1000)} s old, and ${since}: is its service running, and on the same queue (CALC_DATA_DIR or CALC_REDIS_URL)?`,
  };
}

/**
 * Logs a warning when an operation's queue becomes stalled (and once more when it drains
 * again), checking every half lease (at least every second, at most every 30 s). A failing
 * read is logged at debug: the queue's health is reported by /readyz and the metrics.
 */
export function watchStalls(
  queue: Pick<DurableQueue, 'stats'>,
  operations: readonly ServiceOp[],
  leaseMs: number,
  logger: Logger,
): { stop(): void } {
  const stalled = new Set<string>();
  const check = async () => {
    try {
      const stats = await queue.stats(operations);
      const now = Date.now();
      for (const op of operations) {
        const s = stats[op];
        if (!s) continue;
        const stall = stallOf(s, leaseMs, now);
        if (stall.stalled && !stalled.has(op)) logger.warn({ op, ...s }, `queue of ${op} stalled: ${stall.stallReason}`);
        if (!stall.stalled && stalled.has(op)) logger.info({ op }, `queue of ${op} is being drained again`);
        if (stall.stalled) stalled.add(op);
        else stalled.delete(op);
      }
    } catch (error) {
      logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'stall check: queue stats unavailable');
    }
  };
  const timer = setInterval(() => void check(), Math.min(30_000, Math.max(1000, Math.floor(leaseMs / 2))));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
