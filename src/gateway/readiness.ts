/**
 * Can the gateway accept work right now? A PING is not enough: Redis at `maxmemory` with
 * `noeviction` answers PING and refuses every write, and a full disk lets SQLite read but not
 * commit. So the check writes, with the same call a direct idempotent answer uses (`saveTicket`),
 * one probe ticket that no client can own (client names never contain a comma), at most once per
 * `cacheMs` however often /readyz is polled. With an outbox the probe writes to Redis behind it:
 * a journaled probe would read "ok" while Redis refuses, and sit in the outbox's depth.
 */
import type { DurableQueue, Ticket } from '../queue/types.js';
import type { ThrottledWarn } from './throttled-log.js';

export interface QueueReadiness {
  /** The queue answers and takes a write. */
  readonly ok: boolean;
  /** Why not, when not (the backend's own words, cut short). */
  readonly reason?: string;
}

const PROBE_CLIENT = 'calcmesh,readiness-probe';
const PROBE_ID = 'readiness-probe';

export function createQueueReadiness(front: DurableQueue, warn: ThrottledWarn, cacheMs = 1000) {
  const queue = front.behindOutbox?.() ?? front;
  let cached: { at: number; result: Promise<QueueReadiness> } | undefined;
  const probe = async (): Promise<QueueReadiness> => {
    const now = Date.now();
    const ticket: Ticket = { id: PROBE_ID, client: PROBE_CLIENT, status: 'done', operation: 'add', num1: 0, num2: 0, result: 0, createdAt: now, completedAt: now };
    try {
      await queue.ping();
      await queue.saveTicket(ticket);
      return { ok: true };
    } catch (error) {
      warn('queue readiness probe failed: the queue cannot take writes', error);
      const cause = (error as { cause?: unknown }).cause;
      const message = cause instanceof Error ? cause.message : error instanceof Error ? error.message : String(error);
      return { ok: false, reason: `the queue refuses writes: ${message.slice(0, 200)}` };
    }
  };
  return {
    check(): Promise<QueueReadiness> {
      if (!cached || Date.now() - cached.at >= cacheMs) cached = { at: Date.now(), result: probe() };
      return cached.result;
    },
  };
}
