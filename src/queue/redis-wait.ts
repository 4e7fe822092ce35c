/**
 * Replica-acknowledged writes (CALC_REDIS_MIN_REPLICAS): a write is confirmed only once WAIT says
 * that many replicas have it, so losing the master loses nothing that was confirmed. WAIT is
 * refused inside scripts on Redis 7.0, and it only covers the writes of the connection it is sent
 * on, so it goes on the writing connection, after the write has been answered (sent together, a
 * script that hit NOSCRIPT on a fresh master would be re-sent behind the WAIT and not covered).
 *
 * One WAIT covers every write its connection made before it, so writes share them (a group
 * commit): at most one WAIT is in flight; writes answered while it waits share the next one.
 * Replicas that are gone then cost one WAIT timeout per round, not one per write. A write whose
 * connection was replaced before its WAIT cannot be confirmed by it and is refused.
 */
import { unavailable } from '../shared/errors.js';
import type { Connection } from './redis-connection.js';

export type Confirm = <T>(write: () => Promise<T>) => Promise<T>;

export function replicaAcknowledgement(connection: Connection, minReplicas: number, waitMs: number): Confirm {
  if (minReplicas <= 0) return (write) => write();
  let epoch = 0;
  connection.redis.on('ready', () => {
    epoch += 1;
  });
  let inFlight: Promise<number> | undefined;
  let next: Promise<number> | undefined;

  function round(): Promise<number> {
    if (!inFlight) {
      inFlight = (connection.redis.call('WAIT', minReplicas, waitMs) as Promise<number>).finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    }
    next ??= inFlight.catch(() => 0).then(() => {
      next = undefined;
      return round();
    });
    return next;
  }

  return async (write) => {
    const at = epoch;
    const value = await write();
    const replicas = await round();
    if (epoch !== at) throw unavailable('queue unavailable: the Redis connection changed before replicas acknowledged the write');
    if (replicas < minReplicas) {
      throw unavailable(`queue unavailable: ${replicas} of ${minReplicas} replicas acknowledged the write within ${waitMs} ms`);
    }
    return value;
  };
}
