/**
 * Real gRPC services on real sockets, in the test process: each arithmetic service (and the
 * evaluator) bound to 127.0.0.1 on a port the OS picks. `stop` and `start` let a test take one
 * away and bring it back on the same port.
 */
import { buildArithmeticServer } from '../../src/services/arithmetic/server.js';
import { buildEvaluatorServer } from '../../src/services/evaluator/server.js';
import type { ServiceHost } from '../../src/services/grpc-host.js';
import { silentLogger } from '../../src/shared/logger.js';
import { ARITHMETIC_OPS, SERVICE_OPS, type ServiceOp } from '../../src/shared/operations.js';
import { createUpstreams, type Upstreams } from '../../src/upstream/index.js';

export interface TestServices {
  readonly targets: Record<ServiceOp, string[]>;
  readonly ports: Record<ServiceOp, number>;
  stop(op: ServiceOp): Promise<void>;
  start(op: ServiceOp): Promise<void>;
  close(): Promise<void>;
}

export async function startServices(options: { deadlineMs?: number } = {}): Promise<TestServices> {
  const hosts = new Map<ServiceOp, ServiceHost>();
  const ports = {} as Record<ServiceOp, number>;
  const targets = {} as Record<ServiceOp, string[]>;
  let evaluatorUpstreams: Upstreams | undefined;

  const build = (op: ServiceOp): ServiceHost => {
    if (op !== 'evaluate') return buildArithmeticServer(op, { logger: silentLogger() });
    // The evaluator calls only the arithmetic services; its own target is never used.
    evaluatorUpstreams ??= createUpstreams({ ...targets, evaluate: ['127.0.0.1:9'] }, { operations: ARITHMETIC_OPS });
    return buildEvaluatorServer({ upstreams: evaluatorUpstreams, logger: silentLogger(), deadlineMs: options.deadlineMs ?? 1000 });
  };

  const start = async (op: ServiceOp) => {
    const host = build(op);
    ports[op] = await host.listen('127.0.0.1', ports[op] ?? 0);
    targets[op] = [`127.0.0.1:${ports[op]}`];
    hosts.set(op, host);
  };

  for (const op of ARITHMETIC_OPS) await start(op);
  await start('evaluate');

  const stop = async (op: ServiceOp) => {
    const host = hosts.get(op);
    hosts.delete(op);
    if (host) await host.shutdown({ forceAfterMs: 2000 });
  };

  return {
    targets,
    ports,
    stop,
    start,
    async close() {
      for (const op of SERVICE_OPS) await stop(op);
      evaluatorUpstreams?.close();
    },
  };
}
