/**
 * The life of one service process: listen, consume its own operation's queue continuously,
 * and stop gracefully (NOT_SERVING first, then in-flight calls and claimed tasks finish).
 */
import { hostname } from 'node:os';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { onShutdown } from '../shared/lifecycle.js';
import type { ServiceOp } from '../shared/operations.js';
import { openQueue, startConsumer } from '../queue/index.js';
import type { ClaimedTask, Outcome } from '../queue/types.js';
import type { ServiceHost } from './grpc-host.js';

export interface RunServiceOptions {
  readonly op: ServiceOp;
  readonly config: Config;
  readonly logger: Logger;
  readonly host: ServiceHost;
  readonly port: number;
  readonly handle: (task: ClaimedTask) => Outcome | Promise<Outcome>;
  readonly isRetryable?: (error: unknown) => boolean;
  readonly onStop?: () => void;
}

export async function runService(options: RunServiceOptions): Promise<void> {
  const { op, config, logger, host } = options;
  const bound = await host.listen(config.service.host, options.port);
  logger.info({ op, host: config.service.host, port: bound }, `${op} service listening`);

  const queue = openQueue({ redisUrl: config.redisUrl, dataDir: config.dataDir, resultTtlS: config.resultTtlS, maxDeliveries: config.maxDeliveries });
  const consumer = startConsumer({
    queue,
    operation: op,
    consumer: `${op}-${hostname()}-${process.pid}`,
    concurrency: config.drainConcurrency,
    leaseMs: config.leaseMs,
    handler: options.handle,
    isRetryable: options.isRetryable ?? (() => false),
    logger,
  });

  onShutdown(logger, async () => {
    await host.shutdown({ graceMs: config.service.drainGraceMs });
    await consumer.stop();
    await queue.close();
    options.onStop?.();
    logger.info({ op }, `${op} service stopped`);
  });
}
