/**
 * The replicas of every service, as one object the gateway and the evaluator call. A call goes
 * to the next replica in turn; when that replica is unavailable and time remains before the
 * deadline, it is tried once more on another replica before the failure is reported.
 */
import type { ArithmeticOp, ServiceOp } from '../shared/operations.js';
import { SERVICE_OPS } from '../shared/operations.js';
import { createTargetClient, type CallOptions, type TargetClient } from './client.js';
import { isUpstreamUnavailable } from './errors.js';
import { createHealthProbe, type ReplicaHealth } from './health.js';

export interface ReplicaStatus {
  readonly target: string;
  readonly health: ReplicaHealth;
}

export interface Upstreams {
  arithmetic(op: ArithmeticOp, num1: number, num2: number, options: CallOptions): Promise<number>;
  evaluate(expression: string, options: CallOptions): Promise<number>;
  /** Probes every replica of the given operations with grpc.health.v1 Check. */
  probe(ops?: readonly ServiceOp[], timeoutMs?: number): Promise<Record<string, ReplicaStatus[]>>;
  close(): void;
}

export function createUpstreams(targets: Readonly<Record<ServiceOp, readonly string[]>>): Upstreams {
  const pools = new Map<ServiceOp, ReturnType<typeof createReplicaPool>>();
  for (const op of SERVICE_OPS) pools.set(op, createReplicaPool(targets[op]));
  const pool = (op: ServiceOp) => pools.get(op)!;

  return {
    arithmetic: (op, num1, num2, options) => pool(op).call((c) => c.arithmetic(op, num1, num2, options)),
    evaluate: (expression, options) => pool('evaluate').call((c) => c.evaluate(expression, options)),
    async probe(ops = SERVICE_OPS, timeoutMs = 500) {
      const entries = await Promise.all(ops.map(async (op) => [op, await pool(op).probe(timeoutMs)] as const));
      return Object.fromEntries(entries);
    },
    close() {
      for (const p of pools.values()) p.close();
    },
  };
}

function createReplicaPool(targets: readonly string[]) {
  const replicas = targets.map((target) => ({ client: createTargetClient(target), probe: createHealthProbe(target) }));
  let next = 0;

  return {
    async call<T>(attempt: (client: TargetClient) => Promise<T>): Promise<T> {
      const first = next++ % replicas.length;
      try {
        return await attempt(replicas[first]!.client);
      } catch (error) {
        if (replicas.length < 2 || !isUpstreamUnavailable(error)) throw error;
        return attempt(replicas[(first + 1) % replicas.length]!.client);
      }
    },
    probe: (timeoutMs: number) =>
      Promise.all(replicas.map(async (r) => ({ target: r.client.target, health: await r.probe.check('', timeoutMs) }))),
    close() {
      for (const r of replicas) {
        r.client.close();
        r.probe.close();
      }
    },
  };
}
