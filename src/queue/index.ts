/** The queue's public surface: the interface, both backends, the consumer loop, and the choice between them. */
import { createRedisQueue } from './redis-streams.js';
import { createSqliteQueue } from './sqlite.js';
import type { DurableQueue, QueueOptions } from './types.js';

export type * from './types.js';
export { createRedisQueue, type RedisQueueOptions } from './redis-streams.js';
export { createSqliteQueue } from './sqlite.js';
export { startConsumer, type Consumer, type ConsumerOptions } from './consumer.js';
export { DEAD_LETTER_CODE } from './errors.js';

/** Redis Streams when a URL is configured (CALC_REDIS_URL), else the embedded SQLite file under dataDir. */
export function openQueue(options: { redisUrl?: string | undefined; dataDir: string } & QueueOptions): DurableQueue {
  const { redisUrl, dataDir, ...queueOptions } = options;
  return redisUrl ? createRedisQueue(redisUrl, queueOptions) : createSqliteQueue(dataDir, queueOptions);
}
