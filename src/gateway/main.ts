import { setFlagsFromString } from 'node:v8';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { bindFailure, onShutdown } from '../shared/lifecycle.js';
import { openQueueAtStart } from '../queue/open.js';
import { createGatewayMetrics } from './metrics.js';
import { connectUpstreams } from './upstreams.js';
import { buildGateway } from './build.js';
import { watchStalls } from './stall.js';
import { SERVICE_OPS } from '../shared/operations.js';
import { startTracing } from '../shared/tracing.js';

/**
 * `calcmesh gateway`: the only place the gateway binds an address. Its queue is opened first;
 * what keeps it from starting (the queue, the port) is a StartupError naming the cause.
 */
export async function mainGateway(config: Config, logger: Logger): Promise<void> {
  // Under load V8 lets the old space grow to ~4x its live size (~22 MB live, ~90 MB before a
  // mark-compact): most of the gateway's RSS. A growth factor of 1.5 keeps RSS flat near 125 MB
  // for a mark-compact every ~0.5 s (~6 ms each, incremental). Unlike the semi-space size, V8
  // reads this flag at every collection, so setting it here (not on the command line) works.
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  const stopTracing = await startTracing({ endpoint: config.tracing.endpoint, serviceName: 'calcmesh-gateway' });
  const { queue, where } = await openQueueAtStart({
    redis: config.redis,
    dataDir: config.dataDir,
    resultTtlS: config.resultTtlS,
    maxDeliveries: config.maxDeliveries,
    logger,
    outbox: config.outbox.enabled ? { max: config.outbox.max } : undefined,
  });
  logger.info({ queue: queue.backend, at: where }, `gateway: queue opened at ${where}`);
  const metrics = createGatewayMetrics({ queue, logger });
  const upstreams = connectUpstreams(config, logger, metrics);
  const app = await buildGateway(config, { queue, upstreams, logger, metrics });
  try {
    await app.listen({ host: config.gateway.host, port: config.gateway.port });
  } catch (error) {
    upstreams.close();
    await app.close().catch(() => undefined);
    await queue.close();
    throw await bindFailure(config.gateway.host, config.gateway.port, 'gateway', error);
  }
  logger.info({ address: `http://${config.gateway.host}:${config.gateway.port}`, queue: queue.backend }, 'gateway listening');
  const stalls = watchStalls(queue, SERVICE_OPS, config.leaseMs, logger);
  onShutdown(logger, async () => {
    stalls.stop();
    await app.close();
    upstreams.close();
    await queue.close();
    await stopTracing();
  });
}

const HEAP_GROWING_PERCENT = 50;
