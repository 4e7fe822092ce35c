/**
 * The replicas of every service, as one object the gateway and the evaluator call.
 *
 * Routing: a call goes to the next replica in turn whose circuit is closed. A replica's circuit
 * opens after consecutive availability failures, or at once when its health Watch reports
 * NOT_SERVING (a planned stop) or loses the replica; it closes when the replica reports SERVING
 * again. When the chosen replica is unavailable and another one's circuit is closed, the call is
 * tried once more there, within the same deadline. When no replica can be called, the failure
 * is immediate (no deadline wait), and the gateway queues the request.
 */
import { status as GrpcStatus, type ChannelCredentials } from '@grpc/grpc-js';
import type { ArithmeticOp, ServiceOp } from '../shared/operations.js';
import { SERVICE_OPS } from '../shared/operations.js';
import { CircuitBreaker, type BreakerState } from '../resilience/index.js';
import { createTargetClient, type CallOptions, type TargetClient } from './client.js';
import { isUpstreamUnavailable, UpstreamUnavailableError } from './errors.js';
import { createHealthProbe, type ReplicaHealth } from './health.js';
import { createH2TargetClient, type H2Tls } from './h2-client.js';
import { createStreamTargetClient } from './stream-client.js';

export interface ReplicaStatus {
  readonly target: string;
  readonly health: ReplicaHealth;
  readonly breaker: BreakerState;
  readonly inFlight: number;
}

export interface ResilienceOptions {
  /** Consecutive availability failures that open a replica's circuit (CALC_BREAKER_FAILURES). */
  readonly failureThreshold?: number;
  /** How long a circuit stays open before a health probe may close it (CALC_BREAKER_HALF_OPEN_MS). */
  readonly halfOpenAfterMs?: number;
  /** Follow each replica with grpc.health.v1 Watch (default true). */
  readonly watchHealth?: boolean;
  /** TLS or plaintext (the default), for grpc-js (health) and the node:http2 client (calls). */
  readonly credentials?: ChannelCredentials;
  readonly h2Tls?: H2Tls | undefined;
  /** Which client makes the calls: the lean node:http2 one (default), grpc-js, or one multiplexed stream per replica. */
  readonly transport?: 'h2' | 'grpc-js' | 'stream';
  readonly onBreakerChange?: (op: ServiceOp, target: string, state: BreakerState, previous: BreakerState) => void;
  /** The services this process calls (default: all); the evaluator leaves itself out. */
  readonly operations?: readonly ServiceOp[];
  /** Called after every attempt with its outcome: `OK` or the calcmesh error code. */
  readonly onCall?: (op: ServiceOp, target: string, outcome: string, seconds: number) => void;
  readonly now?: () => number;
}

export interface Upstreams {
  arithmetic(op: ArithmeticOp, num1: number, num2: number, options: CallOptions): Promise<number>;
  evaluate(expression: string, options: CallOptions): Promise<number>;
  /** What this process knows of every replica now: watched health, circuit, calls in flight. */
  status(): Record<ServiceOp, ReplicaStatus[]>;
  close(): void;
}

export function createUpstreams(targets: Readonly<Record<ServiceOp, readonly string[]>>, options: ResilienceOptions = {}): Upstreams {
  const operations = options.operations ?? SERVICE_OPS;
  const pools = new Map<ServiceOp, ReplicaPool>();
  for (const op of operations) pools.set(op, createReplicaPool(op, targets[op], options));
  const pool = (op: ServiceOp) => {
    const found = pools.get(op);
    if (!found) throw new Error(`this process does not call the ${op} service`);
    return found;
  };

  return {
    arithmetic: (op, num1, num2, callOptions) => pool(op).call((c) => c.arithmetic(op, num1, num2, callOptions)),
    evaluate: (expression, callOptions) => pool('evaluate').call((c) => c.evaluate(expression, callOptions)),
    status: () => Object.fromEntries(operations.map((op) => [op, pool(op).status()])) as Record<ServiceOp, ReplicaStatus[]>,
    close() {
      for (const p of pools.values()) p.close();
    },
  };
}

type ReplicaPool = ReturnType<typeof createReplicaPool>;

function withoutStack<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

interface Replica {
  readonly target: string;
  readonly client: TargetClient;
  readonly probe: ReturnType<typeof createHealthProbe>;
  readonly breaker: CircuitBreaker;
  health: ReplicaHealth;
  inFlight: number;
  stopWatch: (() => void) | undefined;
}

function createReplicaPool(op: ServiceOp, targets: readonly string[], options: ResilienceOptions) {
  const replicas = targets.map((target): Replica => {
    const probe = createHealthProbe(target, options.credentials);
    const replica: Replica = {
      target,
      client: options.transport === 'grpc-js' ? createTargetClient(target, options.credentials) : options.transport === 'stream' ? createStreamTargetClient(target, { tls: options.h2Tls }) : createH2TargetClient(target, options.h2Tls),
      probe,
      health: 'UNKNOWN',
      inFlight: 0,
      stopWatch: undefined,
      breaker: new CircuitBreaker({
        failureThreshold: options.failureThreshold ?? 3,
        halfOpenAfterMs: options.halfOpenAfterMs ?? 2000,
        probe: async () => (replica.health = await probe.check('', 500)) === 'SERVING',
        onStateChange: (state, previous) => options.onBreakerChange?.(op, target, state, previous),
        now: options.now,
      }),
    };
    if (options.watchHealth !== false) {
      replica.stopWatch = probe.watch((health) => {
        replica.health = health;
        if (health === 'SERVING') replica.breaker.success();
        else replica.breaker.trip();
      });
    }
    return replica;
  });
  let next = 0;
  // While every circuit is open each request fails here at once: one shared error, no stack trace per request.
  let allOpenError: UpstreamUnavailableError | undefined;
  const allOpen = () =>
    (allOpenError ??= withoutStack(() => new UpstreamUnavailableError(`${op}: no replica can be called (every circuit is open)`, targets.join(','), GrpcStatus.UNAVAILABLE, 'circuit')));

  /** The next replica in turn whose circuit allows a call, other than `except`. */
  const pick = (except?: Replica): Replica | undefined => {
    for (let i = 0; i < replicas.length; i++) {
      const replica = replicas[(next + i) % replicas.length]!;
      if (replica !== except && replica.breaker.allows()) {
        next = (next + i + 1) % replicas.length;
        return replica;
      }
    }
    return undefined;
  };

  async function attemptOn<T>(replica: Replica, attempt: (client: TargetClient) => Promise<T>): Promise<T> {
    replica.inFlight++;
    const started = performance.now();
    let outcome = 'OK';
    try {
      const value = await attempt(replica.client);
      replica.breaker.success();
      return value;
    } catch (error) {
      // Only this replica's own failure to answer counts against it: an argument or domain
      // error, or its answer that a service it needs is down, is an answer; a call never sent
      // (no time left) says nothing about it.
      if (isUpstreamUnavailable(error) && error.replicaFailed) replica.breaker.failure();
      else if (!isUpstreamUnavailable(error) || error.origin === 'peer') replica.breaker.success();
      outcome = (error as { code?: string }).code ?? 'INTERNAL';
      throw error;
    } finally {
      replica.inFlight--;
      options.onCall?.(op, replica.target, outcome, (performance.now() - started) / 1000);
    }
  }

  return {
    async call<T>(attempt: (client: TargetClient) => Promise<T>): Promise<T> {
      const first = pick();
      if (!first) throw allOpen();
      try {
        return await attemptOn(first, attempt);
      } catch (error) {
        const second = isUpstreamUnavailable(error) && error.replicaFailed ? pick(first) : undefined;
        if (!second) throw error;
        return attemptOn(second, attempt);
      }
    },
    status: (): ReplicaStatus[] =>
      replicas.map((r) => ({ target: r.target, health: r.health, breaker: r.breaker.state, inFlight: r.inFlight })),
    close() {
      for (const r of replicas) {
        r.stopWatch?.();
        r.client.close();
        r.probe.close();
      }
    },
  };
}
