import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { createUpstreams, type Upstreams } from '../upstream/index.js';
import { grpcCredentials } from '../shared/tls.js';
import type { GatewayMetrics } from './metrics.js';

/** The gateway's clients of every service, with circuit changes logged and every call measured. */
export function connectUpstreams(config: Pick<Config, 'targets' | 'breaker'> & Partial<Pick<Config, 'tls' | 'grpcClient' | 'grpcMaxMessageBytes'>>, logger: Logger, metrics: GatewayMetrics): Upstreams {
  const credentials = grpcCredentials(config.tls);
  return createUpstreams(config.targets, {
    ...config.breaker,
    credentials: credentials.client,
    h2Tls: credentials.clientTls,
    transport: config.grpcClient,
    maxMessageBytes: config.grpcMaxMessageBytes,
    onCall: metrics.observeCall,
    onBreakerChange: (op, target, state, previous) => {
      logger.warn({ op, target, state, previous }, `circuit ${state}`);
      metrics.breakerChanged(op, target, state);
    },
  });
}
