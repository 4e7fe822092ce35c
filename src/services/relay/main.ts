/**
 * `calcmesh relay <op>`: the queue consumer of a service that does not consume the queue itself
 * (the original Python services, any server generated from the original proto). It claims
 * `<op>`'s tasks with the same loop, lease, acknowledgement and dead-letter rules as a calcmesh
 * service's own consumer, forwards each one as the original unary rpc to CALC_<OP>_TARGETS, and
 * completes its ticket with the answer. A replica that cannot be reached leaves the task for later.
 */
import { hostname } from 'node:os';
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { onShutdown } from '../../shared/lifecycle.js';
import { isArithmeticOp, type ServiceOp } from '../../shared/operations.js';
import { grpcCredentials } from '../../shared/tls.js';
import { startTracing, type TraceContext } from '../../shared/tracing.js';
import { startConsumer } from '../../queue/index.js';
import { openQueueAtStart } from '../../queue/open.js';
import type { ClaimedTask, Outcome } from '../../queue/types.js';
import { createUpstreams, isUpstreamUnavailable, withTracing, type Upstreams } from '../../upstream/index.js';

/** Forwards one task; its error (a CalcError) becomes the ticket's, or a retry when it is unavailability. */
async function forward(upstreams: Upstreams, op: ServiceOp, task: ClaimedTask, deadlineMs: number, trace?: TraceContext): Promise<Outcome> {
  const options = { deadline: Date.now() + deadlineMs, requestId: task.requestId, ...trace };
  const result = isArithmeticOp(op)
    ? await upstreams.arithmetic(op, task.num1 ?? 0, task.num2 ?? 0, options)
    : await upstreams.evaluate(task.expression ?? '', options);
  return { ok: true, result };
}

export async function mainRelay(op: ServiceOp, config: Config, logger: Logger): Promise<void> {
  const credentials = grpcCredentials(config.tls);
  const upstreams = withTracing(createUpstreams(config.targets, {
    ...config.breaker,
    operations: [op],
    credentials: credentials.client,
    h2Tls: credentials.clientTls,
    transport: config.grpcClient,
    maxMessageBytes: config.grpcMaxMessageBytes,
    onBreakerChange: (_op, target, state, previous) => logger.warn({ op, target, state, previous }, `circuit ${state}`),
  }));
  const stopTracing = await startTracing({ endpoint: config.tracing.endpoint, serviceName: `calcmesh-relay-${op}` });
  // The queue is opened (and proven) before anything is claimed, on whichever topology is configured.
  const { queue, where } = await openQueueAtStart({ redis: config.redis, dataDir: config.dataDir, resultTtlS: config.resultTtlS, maxDeliveries: config.maxDeliveries });
  logger.info({ op, queue: queue.backend, at: where }, `${op} relay: queue opened at ${where}`);
  // While the target is down every claimed task fails at once: a pause before giving each back
  // keeps the loop from cycling through the backlog (its slots stay taken meanwhile).
  const pauseMs = Math.min(1000, Math.floor(config.leaseMs / 4));
  const consumer = startConsumer({
    queue,
    operation: op,
    consumer: `relay-${op}-${hostname()}-${process.pid}`,
    concurrency: config.drainConcurrency,
    leaseMs: config.leaseMs,
    handler: async (task, trace) => {
      try {
        return await forward(upstreams, op, task, config.deadlineMs, trace);
      } catch (error) {
        if (isUpstreamUnavailable(error)) await new Promise((resolve) => setTimeout(resolve, pauseMs));
        throw error;
      }
    },
    isRetryable: isUpstreamUnavailable,
    retryMaxMs: 2000,
    logger,
  });
  logger.info({ op, targets: config.targets[op], queue: queue.backend }, `${op} relay started`);

  onShutdown(logger, async () => {
    await consumer.stop();
    await queue.close();
    upstreams.close();
    await stopTracing();
    logger.info({ op }, `${op} relay stopped`);
  });
}
