/**
 * The replicas of every service, as one object the gateway and the evaluator call.
 *
 * Routing: a call goes to the next replica in turn whose circuit is closed (policies from
 * resilience/: `failover` retries on another replica, `circuit` feeds the breaker through the
 * failure filter `judge`). A replica's circuit
 * opens after consecutive availability failures, or at once when its health Watch reports
 * NOT_SERVING (a planned stop) or loses the replica; it closes when the replica reports SERVING
 * again. Over the Stream transport the stream itself is the replica's liveness: the client keeps
 * it open, a stream that broke opens the circuit at once and a re-dialled one closes it, so a
 * replica that comes back is used again as soon as its port accepts (the stream client dials a
 * replica that is down every 50 ms). A replica without the Stream rpc is called unary and judged
 * by its health and its calls, as any other. When the chosen replica is unavailable and another one's circuit is closed, the call is
 * tried once more there, within the same deadline. When no replica can be called, the failure
 * is immediate (no deadline wait), and the gateway queues the request.
 */
import { status as GrpcStatus, type ChannelCredentials } from '@grpc/grpc-js';
import type { ArithmeticOp, ServiceOp } from '../shared/operations.js';
import { SERVICE_OPS } from '../shared/operations.js';
import { circuit, CircuitBreaker, retry, type BreakerState, type Policy, type Verdict } from '../resilience/index.js';
import { createTargetClient, type CallOptions, type TargetClient } from './client.js';
import { isUpstreamUnavailable, UpstreamUnavailableError } from './errors.js';
import { createHealthProbe, type ReplicaHealth } from './health.js';
import { createH2TargetClient, type H2Tls } from './h2-client.js';
import { createStreamTargetClient, type StreamTargetClient } from './stream-client.js';
import { DEFAULTS } from '../shared/config.js';


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
  /** Follow each replica: grpc.health.v1 Watch, and its stream's liveness over the Stream transport (default true). */
  readonly watchHealth?: boolean;
  /** TLS or plaintext (the default), for grpc-js (health) and the node:http2 client (calls). */
  readonly credentials?: ChannelCredentials;
  readonly h2Tls?: H2Tls | undefined;
  /** The largest response message accepted from a replica (CALC_GRPC_MAX_MESSAGE_BYTES, default 4 MiB). */
  readonly maxMessageBytes?: number;
  /** Which client makes the calls: one multiplexed Stream rpc per replica (default), the lean node:http2 unary one, or grpc-js. */
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
    arithmetic: (op, num1, num2, callOptions) => pool(op).call((c) => c.arithmetic(op, num1, num2, callOptions), callOptions),
    evaluate: (expression, callOptions) => pool('evaluate').call((c) => c.evaluate(expression, callOptions), callOptions),
    status: () => Object.fromEntries(operations.map((op) => [op, pool(op).status()])) as Record<ServiceOp, ReplicaStatus[]>,
    close() {
      for (const p of pools.values()) p.close();
    },
  };
}

type ReplicaPool = ReturnType<typeof createReplicaPool>;

/** The one place a transport is chosen. */
function createClient(target: string, options: ResilienceOptions): TargetClient {
  const limits = { maxMessageBytes: options.maxMessageBytes };
  switch (options.transport ?? 'stream') {
    case 'grpc-js':
      return createTargetClient(target, options.credentials, limits);
    case 'h2':
      return createH2TargetClient(target, options.h2Tls, limits);
    case 'stream':
      return createStreamTargetClient(target, { tls: options.h2Tls, ...limits });
  }
}

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
  /** The breaker's policy for a call with its own deadline, and for one sharing a larger job's (made once, not per call). */
  readonly circuits: { readonly own: Policy; readonly shared: Policy };
  health: ReplicaHealth;
  inFlight: number;
  stopWatch: (() => void) | undefined;
  stopLink: (() => void) | undefined;
}

const watchesLink = (client: TargetClient): client is StreamTargetClient => typeof (client as Partial<StreamTargetClient>).watchLink === 'function';

/**
 * The failure filter. Only this replica's own failure to answer counts against it; an argument
 * or domain error, or its answer that a service it needs is down, is an answer; a call never
 * sent (no time left), or cut short because the caller's larger job ran out of time, says
 * nothing about it.
 */
function judge(error: unknown, sharedDeadline: boolean): Verdict {
  if (!isUpstreamUnavailable(error)) return 'success';
  if (error.origin === 'peer') return 'success';
  if (!error.replicaFailed) return 'inconclusive';
  if (sharedDeadline && error.grpcCode === GrpcStatus.DEADLINE_EXCEEDED) return 'inconclusive';
  return 'failure';
}

/** One more attempt, on another replica, when the first one did not answer. */
const failover = retry({ maxAttempts: 2, shouldRetry: (error) => isUpstreamUnavailable(error) && error.replicaFailed });

function createReplicaPool(op: ServiceOp, targets: readonly string[], options: ResilienceOptions) {
  const replicas = targets.map((target): Replica => {
    const probe = createHealthProbe(target, options.credentials);
    const breaker = new CircuitBreaker({
      failureThreshold: options.failureThreshold ?? DEFAULTS.CALC_BREAKER_FAILURES,
      halfOpenAfterMs: options.halfOpenAfterMs ?? DEFAULTS.CALC_BREAKER_HALF_OPEN_MS,
      // A replica without a health service is tried with a real call (gRFC A17).
      probe: async () => {
        replica.health = await probe.check('', 500);
        return replica.health === 'UNIMPLEMENTED' ? 'trial' : replica.health === 'SERVING';
      },
      onStateChange: (state, previous) => options.onBreakerChange?.(op, target, state, previous),
      now: options.now,
    });
    const replica: Replica = {
      target,
      client: createClient(target, options),
      probe,
      health: 'UNKNOWN',
      inFlight: 0,
      stopWatch: undefined,
      stopLink: undefined,
      breaker,
      circuits: {
        own: circuit(breaker, (error) => judge(error, false)),
        shared: circuit(breaker, (error) => judge(error, true)),
      },
    };
    if (options.watchHealth !== false) {
      replica.stopWatch = probe.watch((health) => {
        const known = replica.health === 'SERVING' || replica.health === 'NOT_SERVING';
        replica.health = health;
        if (health === 'SERVING') replica.breaker.success();
        else if (health === 'NOT_SERVING') replica.breaker.trip();
        // Lost a replica that was answering its health: trip. One never seen yet, or one without
        // a health service, is tried, not assumed down: its calls decide.
        else if (health === 'UNREACHABLE' && known) replica.breaker.trip();
      });
      if (watchesLink(replica.client)) {
        replica.stopLink = replica.client.watchLink(op === 'evaluate' ? 'evaluator' : 'calculator', (event) => {
          if (event === 'up') replica.breaker.success();
          else replica.breaker.trip();
        });
      }
    }
    return replica;
  });
  let next = 0;
  // While every circuit is open each request fails here at once: one shared error, no stack trace per request.
  let allOpenError: UpstreamUnavailableError | undefined;
  const allOpen = () =>
    (allOpenError ??= withoutStack(() => new UpstreamUnavailableError(`${op}: no replica can be called (every circuit is open)`, targets.join(','), GrpcStatus.UNAVAILABLE, 'circuit')));

  /** The next replica in turn whose circuit allows a call, other than the one already tried. */
  const pick = (tried: Replica | undefined): Replica | undefined => {
    for (let i = 0; i < replicas.length; i++) {
      const replica = replicas[(next + i) % replicas.length]!;
      if (replica !== tried && replica.breaker.allows()) {
        next = (next + i + 1) % replicas.length;
        return replica;
      }
    }
    return undefined;
  };

  function measured<T>(replica: Replica, attempt: (client: TargetClient) => Promise<T>): Promise<T> {
    replica.inFlight++;
    const started = performance.now();
    const done = (outcome: string) => {
      replica.inFlight--;
      options.onCall?.(op, replica.target, outcome, (performance.now() - started) / 1000);
    };
    let call: Promise<T>;
    try {
      call = attempt(replica.client);
    } catch (error) {
      call = Promise.reject(error);
    }
    return call.then(
      (value) => {
        done('OK');
        return value;
      },
      (error: unknown) => {
        done((error as { code?: string }).code ?? 'INTERNAL');
        throw error;
      },
    );
  }

  return {
    /** Pick a replica, call it through its circuit; when it did not answer, once more on another. */
    call<T>(attempt: (client: TargetClient) => Promise<T>, callOptions: CallOptions): Promise<T> {
      // `failover` makes two attempts at most: the second skips the replica of the first.
      let tried: Replica | undefined;
      return failover.execute((previous) => {
        const replica = pick(tried);
        if (!replica) return Promise.reject(previous ?? allOpen());
        tried = replica;
        return (callOptions.sharedDeadline ? replica.circuits.shared : replica.circuits.own).execute(() => measured(replica, attempt));
      });
    },
    status: (): ReplicaStatus[] =>
      replicas.map((r) => ({ target: r.target, health: r.health, breaker: r.breaker.state, inFlight: r.inFlight })),
    close() {
      for (const r of replicas) {
        r.stopWatch?.();
        r.stopLink?.();
        r.client.close();
        r.probe.close();
      }
    },
  };
}
