import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { onShutdown } from '../shared/lifecycle.js';
import { openQueue } from '../queue/index.js';
import { createGatewayMetrics } from './metrics.js';
import { connectUpstreams } from './upstreams.js';
import { buildGateway } from './build.js';

/** `calcmesh gateway`: the only place the gateway binds an address. */
export async function mainGateway(config: Config, logger: Logger): Promise<void> {
  const queue = openQueue({
    redis: config.redis,
    dataDir: config.dataDir,
    resultTtlS: config.resultTtlS,
    maxDeliveries: config.maxDeliveries,
    logger,
    outbox: config.outbox.enabled ? { max: config.outbox.max } : undefined,
  });
  const metrics = createGatewayMetrics({ queue });
  const upstreams = connectUpstreams(config, logger, metrics);
  const app = await buildGateway(config, { queue, upstreams, logger, metrics });
  await app.listen({ host: config.gateway.host, port: config.gateway.port });
  logger.info({ address: `http://${config.gateway.host}:${config.gateway.port}`, queue: queue.backend }, 'gateway listening');
  onShutdown(logger, async () => {
    await app.close();
    upstreams.close();
    await queue.close();
  });
}
