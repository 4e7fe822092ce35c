import type { FastifyInstance } from 'fastify';
import { SERVICE_OPS } from '../../shared/operations.js';
import type { DurableQueue, OutboxStats } from '../../queue/types.js';
import type { ReplicaStatus, Upstreams } from '../../upstream/index.js';
import type { Logger } from '../../shared/logger.js';
import { createQueueReadiness } from '../readiness.js';
import { createThrottledWarn } from '../throttled-log.js';
import { stallOf } from '../stall.js';

export interface HealthDeps {
  readonly queue: DurableQueue;
  readonly logger: Logger;
  readonly upstreams: Upstreams;
  readonly version: string;
  readonly startedAt: number;
  /** CALC_LEASE_MS: a queue whose tasks wait longer than this with no claim is reported stalled. */
  readonly leaseMs?: number;
  /** Whether this gateway sends webhooks (CALC_WEBHOOK_SECRET set). */
  readonly webhooks?: boolean;
}

/** Liveness, readiness and the status document behind the dashboard and `calcmesh status`. */
export function healthRoutes(app: FastifyInstance, deps: HealthDeps): void {
  const warn = createThrottledWarn(deps.logger);
  const readiness = createQueueReadiness(deps.queue, warn);
  app.get('/healthz', { schema: { tags: ['operate'], summary: 'liveness: 200 while the process runs' } }, async () => ({ status: 'ok' }));

  // Ready when a request can be accepted one way or the other: the queue takes (writes) what services cannot.
  app.get('/readyz', { schema: { tags: ['operate'], summary: 'readiness: 200 when a request can be accepted (the queue takes writes, or every service serves)' } }, async (_request, reply) => {
    const queue = await readiness.check();
    const services = deps.upstreams.status();
    const allServing = Object.values(services).every(isServing);
    const outbox = outboxOf(deps.queue);
    // With room in the outbox a request is accepted even while Redis is away.
    const ready = queue.ok || (outbox !== undefined && outbox.depth < outbox.max) || allServing;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'unavailable',
      queue: { backend: deps.queue.backend, ...queue, ...(outbox && { outbox, journaling: isJournaling(queue.ok, outbox) }) },
      services: Object.fromEntries(
        Object.entries(services).map(([op, replicas]) => [op, { serving: isServing(replicas), replicas }]),
      ),
    });
  });

  app.get('/v1/status', { schema: { tags: ['operate'], summary: 'services, replicas, circuits and queues' } }, async () => {
    const services = deps.upstreams.status();
    const [stats, queue, webhooks] = await Promise.all([
      deps.queue.stats(SERVICE_OPS).catch((error) => warn('queue stats failed in /v1/status', error)),
      readiness.check(),
      deps.queue.webhookStats().catch((error) => warn('webhook stats failed in /v1/status', error)),
    ]);
    return {
      version: deps.version,
      uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
      // ok: the queue takes writes (what /readyz uses); reason says why not.
      queue: { backend: deps.queue.backend, ...queue, ok: queue.ok && stats !== undefined, ...withOutbox(deps.queue, queue.ok) },
      services: Object.fromEntries(
        SERVICE_OPS.map((op) => {
          const depth = stats?.[op];
          const withStall = depth ? { ...depth, ...stallOf(depth, deps.leaseMs ?? 30_000, Date.now()) } : null;
          return [op, { serving: isServing(services[op]), replicas: services[op], queue: withStall }];
        }),
      ),
      // #15: completions waiting to be POSTed, and those given up (webhook dead letters).
      webhooks: { enabled: deps.webhooks === true, pending: webhooks?.pending ?? null, deadLetters: webhooks?.deadLetters ?? null },
    };
  });
}

/**
 * A service can take calls when one of its replicas has a closed circuit and reports SERVING, or
 * serves no health service at all (a foreign service, health UNIMPLEMENTED): its calls judge it.
 */
const isServing = (replicas: readonly ReplicaStatus[]) =>
  replicas.some((r) => r.breaker === 'closed' && (r.health === 'SERVING' || r.health === 'UNIMPLEMENTED'));

/** The outbox's depth and oldest age, when the gateway has one (undefined also when its file fails). */
function outboxOf(queue: DurableQueue): OutboxStats | undefined {
  try {
    return queue.outbox?.();
  } catch {
    return undefined;
  }
}

const withOutbox = (queue: DurableQueue, redisOk: boolean) => {
  const outbox = outboxOf(queue);
  return outbox ? { outbox, journaling: isJournaling(redisOk, outbox) } : {};
};

/** New writes go to the outbox: Redis refuses them, or the outbox still holds older ones (order). */
const isJournaling = (redisOk: boolean, outbox: OutboxStats) => !redisOk || outbox.depth > 0;
