/** The queue's public surface: the interface, both backends, the consumer loop, and the choice between them. */
import { createRedisQueue } from './redis-streams.js';
import { createSqliteQueue } from './sqlite.js';
import { withOutbox } from './outbox.js';
import type { RedisSettings } from '../shared/config.js';
import type { DurableQueue, QueueOptions } from './types.js';

export type * from './types.js';
export { createRedisQueue, type RedisQueueOptions } from './redis-streams.js';
export { createSqliteQueue } from './sqlite.js';
export { withOutbox, type OutboxOptions } from './outbox.js';
export { startConsumer, type Consumer, type ConsumerOptions } from './consumer.js';
export { DEAD_LETTER_CODE } from './errors.js';

export interface OpenQueueOptions extends QueueOptions {
  /** One Redis at this URL (CALC_REDIS_URL). */
  readonly redisUrl?: string | undefined;
  /** Redis in any topology (Config.redis); wins over redisUrl. */
  readonly redis?: RedisSettings | undefined;
  readonly dataDir: string;
  /** The gateway's local outbox in front of Redis, journaling under dataDir (CALC_OUTBOX, CALC_OUTBOX_MAX); ignored without Redis. */
  readonly outbox?: { readonly max: number } | undefined;
}

/** Redis Streams when Redis is configured (CALC_REDIS_URL, _SENTINELS or _CLUSTER), else the embedded SQLite file under dataDir. */
export function openQueue(options: OpenQueueOptions): DurableQueue {
  const { redisUrl, redis: settings, dataDir, outbox, ...queueOptions } = options;
  const target = settings ?? redisUrl;
  if (!target) return createSqliteQueue(dataDir, queueOptions);
  const redis = createRedisQueue(target, queueOptions);
  return outbox
    ? withOutbox(redis, { dir: dataDir, max: outbox.max, keyTtlMs: queueOptions.resultTtlS * 1000, logger: queueOptions.logger, now: queueOptions.now })
    : redis;
}
