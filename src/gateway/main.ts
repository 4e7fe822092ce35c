import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { bindFailure, onShutdown } from '../shared/lifecycle.js';
import { openQueueAtStart } from '../queue/open.js';
import { createGatewayMetrics } from './metrics.js';
import { connectUpstreams } from './upstreams.js';
import { buildGateway } from './build.js';
import { watchStalls } from './stall.js';
import { SERVICE_OPS } from '../shared/operations.js';

/**
 * `calcmesh gateway`: the only place the gateway binds an address. Its queue is opened first;
 * what keeps it from starting (the queue, the port) is a StartupError naming the cause.
 */
export async function mainGateway(config: Config, logger: Logger): Promise<void> {
  const { queue, where } = await openQueueAtStart({ redisUrl: config.redisUrl, dataDir: config.dataDir, resultTtlS: config.resultTtlS, maxDeliveries: config.maxDeliveries });
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
  });
}
