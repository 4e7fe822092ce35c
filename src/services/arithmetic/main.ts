import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { DEFAULT_PORTS, type ArithmeticOp } from '../../shared/operations.js';
import type { Outcome } from '../../queue/types.js';
import { buildArithmeticServer } from './server.js';
import { compute } from '../../domain/index.js';
import { runService } from '../run.js';
import { createServiceMetrics } from '../metrics.js';
import { grpcCredentials } from '../../shared/tls.js';

/** `calcmesh service <op>`: the gRPC server of one operation and the consumer of its queue. */
export async function mainArithmetic(op: ArithmeticOp, config: Config, logger: Logger): Promise<void> {
  const metrics = createServiceMetrics(op);
  await runService({
    op,
    config,
    logger,
    metrics,
    host: buildArithmeticServer(op, { logger, observe: metrics.observeCall, credentials: grpcCredentials(config.tls).server }),
    port: config.service.port ?? DEFAULT_PORTS[op],
    handle: (task): Outcome => ({ ok: true, result: compute(op, task.num1 ?? NaN, task.num2 ?? NaN) }),
  });
}
