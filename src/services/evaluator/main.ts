import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { ARITHMETIC_OPS, DEFAULT_PORTS } from '../../shared/operations.js';
import { createUpstreams, isUpstreamUnavailable } from '../../upstream/index.js';
import { runService } from '../run.js';
import { createServiceMetrics } from '../metrics.js';
import { grpcCredentials } from '../../shared/tls.js';
import { buildEvaluatorServer, evaluateExpression } from './server.js';

/**
 * `calcmesh service evaluate`. Its queued expressions wait for the arithmetic services they
 * need: an unavailable one makes the task retry later with backoff, never fail. A queued
 * expression has no caller waiting on a deadline: it gets CALC_EVAL_QUEUED_BUDGET_MS for all its
 * calls, while the consumer's heartbeat keeps its lease however long that is.
 */

export async function mainEvaluator(config: Config, logger: Logger): Promise<void> {
  const credentials = grpcCredentials(config.tls);
  const upstreams = createUpstreams(config.targets, {
    ...config.breaker,
    operations: ARITHMETIC_OPS,
    credentials: credentials.client,
    h2Tls: credentials.clientTls,
    transport: config.grpcClient,
    maxMessageBytes: config.grpcMaxMessageBytes,
    onBreakerChange: (op, target, state, previous) => logger.warn({ op, target, state, previous }, `circuit ${state}`),
  });
  const metrics = createServiceMetrics('evaluate');
  const deps = { upstreams, logger, deadlineMs: config.deadlineMs, maxInflight: config.evalMaxInflight, observe: metrics.observeCall, credentials: credentials.server };
  await runService({
    op: 'evaluate',
    config,
    logger,
    metrics,
    host: buildEvaluatorServer(deps),
    port: config.service.port ?? DEFAULT_PORTS.evaluate,
    handle: async (task) => ({
      ok: true,
      result: await evaluateExpression(deps, task.expression ?? '', { requestId: task.requestId, deadline: Infinity }, config.evalQueuedBudgetMs),
    }),
    // A service it needs is down: retry later. Out of time (a very long chain of calls) even with
    // the queued budget: that would fail again, so the ticket fails instead of retrying forever.
    isRetryable: (error) => isUpstreamUnavailable(error) && error.origin !== 'deadline',
    onStop: () => upstreams.close(),
  });
}
