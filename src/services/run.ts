/**
 * The life of one service process: open its queue, then listen (so that it never reports
 * SERVING while it could not drain), consume its own operation's queue continuously, and stop
 * gracefully (NOT_SERVING first, then in-flight calls and claimed tasks finish). What keeps it
 * from starting is a StartupError naming the cause.
 */
import { hostname } from 'node:os';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { bindFailure, onShutdown } from '../shared/lifecycle.js';
import type { ServiceOp } from '../shared/operations.js';
import { startTracing, type TraceContext } from '../shared/tracing.js';
import { startConsumer } from '../queue/index.js';
import { openQueueAtStart } from '../queue/open.js';
import type { ClaimedTask, Outcome } from '../queue/types.js';
import type { ServiceHost } from './grpc-host.js';
import { serveMetrics, type ServiceMetrics } from './metrics.js';

export interface RunServiceOptions {
  readonly op: ServiceOp;
  readonly config: Config;
  readonly logger: Logger;
  readonly host: ServiceHost;
  readonly metrics: ServiceMetrics;
  readonly port: number;
  readonly handle: (task: ClaimedTask, trace: TraceContext | undefined) => Outcome | Promise<Outcome>;
  readonly isRetryable?: (error: unknown) => boolean;
  readonly onStop?: () => void;
}

export async function runService(options: RunServiceOptions): Promise<void> {
  const { op, config, logger, host } = options;
  const stopTracing = await startTracing({ endpoint: config.tracing.endpoint, serviceName: `calcmesh-${op}` });
  const { queue, where } = await openQueueAtStart({ redis: config.redis, dataDir: config.dataDir, resultTtlS: config.resultTtlS, maxDeliveries: config.maxDeliveries });
  logger.info({ op, queue: queue.backend, at: where }, `${op} service: queue opened at ${where}`);
  let bound: number;
  try {
    bound = await host.listen(config.service.host, options.port);
  } catch (error) {
    await queue.close();
    throw await bindFailure(config.service.host, options.port, `${op} service`, error);
  }
  logger.info({ op, host: config.service.host, port: bound }, `${op} service listening`);
  const metricsPort = config.service.metricsPort ?? (bound + 1000 <= 65535 ? bound + 1000 : -1);
  const metricsServer = metricsPort >= 0 ? serveMetrics(options.metrics, config.service.host, metricsPort, logger) : undefined;
  const handle = options.handle;
  const isRetryable = options.isRetryable ?? (() => false);
  const consumer = startConsumer({
    queue,
    operation: op,
    consumer: `${op}-${hostname()}-${process.pid}`,
    concurrency: config.drainConcurrency,
    leaseMs: config.leaseMs,
    // Counted here rather than in the loop: the handler's answer is the drain's outcome.
    handler: async (task, trace) => {
      try {
        const outcome = await handle(task, trace);
        options.metrics.drained(outcome.ok ? 'done' : 'failed');
        return outcome;
      } catch (error) {
        if (isRetryable(error)) options.metrics.retried();
        else options.metrics.drained('failed');
        throw error;
      }
    },
    isRetryable,
    // A queued expression waits for a service it needs: retry within 2 s of its return, never in a hot loop.
    retryMaxMs: 2000,
    logger,
  });

  onShutdown(logger, async () => {
    // Both at once: the consumer stops claiming and finishes what it holds while the gRPC
    // server reports NOT_SERVING, lets callers move away and finishes its calls.
    await Promise.all([host.shutdown({ graceMs: config.service.drainGraceMs }), consumer.stop()]);
    metricsServer?.close();
    await queue.close();
    options.onStop?.();
    await stopTracing();
    logger.info({ op }, `${op} service stopped`);
  });
}
