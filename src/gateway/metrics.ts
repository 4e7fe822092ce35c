/**
 * The gateway's Prometheus metrics, on a registry of its own (several gateways may live in one
 * test process). Queue depth, age and dead letters are read from the queue at scrape time.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, SeriesCache, type CounterSeries, type HistogramSeries } from '../shared/hot-metrics.js';
import type { BreakerState } from '../resilience/index.js';
import { SERVICE_OPS, type ServiceOp } from '../shared/operations.js';
import type { DurableQueue, OperationStats } from '../queue/types.js';
import type { Logger } from '../shared/logger.js';
import { createThrottledWarn } from './throttled-log.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BREAKER_STATES: readonly BreakerState[] = ['closed', 'half-open', 'open'];

export function createGatewayMetrics(options: { queue?: DurableQueue; defaultMetrics?: boolean; logger?: Logger } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const httpRequests = new HotCounter({ name: 'calcmesh_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const httpDuration = new HotHistogram({ name: 'calcmesh_http_request_duration_seconds', help: 'HTTP request latency, by route and status', labelNames: ['method', 'route', 'status'], buckets: LATENCY_BUCKETS, registers: [registry] });
  const grpcCalls = new HotCounter({ name: 'calcmesh_grpc_client_calls_total', help: 'gRPC calls to the services, by operation, replica and outcome (OK or the calcmesh error code)', labelNames: ['operation', 'target', 'outcome'], registers: [registry] });
  const grpcDuration = new HotHistogram({ name: 'calcmesh_grpc_client_duration_seconds', help: 'gRPC call latency, by operation and outcome', labelNames: ['operation', 'outcome'], buckets: LATENCY_BUCKETS, registers: [registry] });
  const queued = new Counter({ name: 'calcmesh_requests_queued_total', help: 'requests stored in the queue because their service was unavailable', labelNames: ['operation'], registers: [registry] });
  const breaker = new Gauge({ name: 'calcmesh_breaker_state', help: 'circuit state of each replica: 1 for the current state', labelNames: ['operation', 'target', 'state'], registers: [registry] });
  const webhookAttempts = new Counter({ name: 'calcmesh_webhook_attempts_total', help: 'webhook POSTs by outcome (delivered: a 2xx; failed: anything else, retried)', labelNames: ['outcome'], registers: [registry] });
  const breakerChanges = new Counter({ name: 'calcmesh_breaker_transitions_total', help: 'circuit state changes, by replica and new state', labelNames: ['operation', 'target', 'state'], registers: [registry] });

  if (options.queue) {
    const queue = options.queue;
    const warn = options.logger ? createThrottledWarn(options.logger) : () => undefined;
    // One read of the queue per scrape feeds every queue gauge (each collects on its own).
    let pending: { at: number; stats: Promise<Awaited<ReturnType<DurableQueue['stats']>> | undefined> } | undefined;
    const stats = () => {
      if (!pending || Date.now() - pending.at > 250) {
        pending = { at: Date.now(), stats: queue.stats(SERVICE_OPS).catch((error) => warn('queue stats failed in /metrics', error)) };
      }
      return pending.stats;
    };
    const queueGauge = (name: string, help: string, read: (s: OperationStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['operation'],
        registers: [registry],
        async collect() {
          const all = await stats();
          for (const op of SERVICE_OPS) if (all?.[op]) this.set({ operation: op }, read(all[op]));
        },
      });
    queueGauge('calcmesh_queue_depth', 'tasks stored and not yet completed, by operation', (s) => s.depth);
    queueGauge('calcmesh_queue_in_flight', 'stored tasks currently claimed by a consumer', (s) => s.inFlight);
    queueGauge('calcmesh_queue_oldest_age_seconds', 'age of the oldest stored task, by operation', (s) => s.oldestAgeMs / 1000);
    queueGauge('calcmesh_queue_dead_letters', 'tasks given up after too many deliveries, by operation', (s) => s.deadLetters);
    if (queue.outbox) {
      const outbox = () => {
        try {
          return queue.outbox?.();
        } catch {
          return undefined;
        }
      };
      new Gauge({ name: 'calcmesh_outbox_depth', help: 'writes journaled in the gateway\'s outbox while Redis could not take them, not yet forwarded', registers: [registry], collect() { this.set(outbox()?.depth ?? 0); } });
      new Gauge({ name: 'calcmesh_outbox_oldest_age_seconds', help: 'age of the oldest write in the gateway\'s outbox', registers: [registry], collect() { this.set((outbox()?.oldestAgeMs ?? 0) / 1000); } });
    }
    const webhookGauge = (name: string, help: string, read: (s: Awaited<ReturnType<DurableQueue['webhookStats']>>) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        async collect() {
          const s = await queue.webhookStats().catch(() => undefined);
          if (s) this.set(read(s));
        },
      });
    webhookGauge('calcmesh_webhooks_pending', 'completions waiting to be POSTed to their callback URL (or being retried)', (s) => s.pending);
    webhookGauge('calcmesh_webhook_dead_letters', 'webhook deliveries given up after CALC_WEBHOOK_ATTEMPTS', (s) => s.deadLetters);
    new Gauge({
      name: 'calcmesh_queue_up',
      help: '1 when the queue answered the last scrape',
      registers: [registry],
      async collect() {
        this.set((await stats()) ? 1 : 0);
      },
    });
  }

  // The series of a label combination, looked up once (hot-metrics.ts): these run on every request.
  const httpChildren = new SeriesCache<{ requests: CounterSeries; duration: HistogramSeries }>();
  const callChildren = new SeriesCache<{ calls: CounterSeries; duration: HistogramSeries }>();

  return {
    registry,
    observeHttp(method: string, route: string, status: number, seconds: number) {
      const child = httpChildren.get(method, route, status, () => {
        const labels = { method, route, status: String(status) };
        return { requests: httpRequests.series(labels), duration: httpDuration.series(labels) };
      });
      child.requests.inc();
      child.duration.observe(seconds);
    },
    observeCall(op: ServiceOp, target: string, outcome: string, seconds: number) {
      const child = callChildren.get(op, outcome, target, () => ({ calls: grpcCalls.series({ operation: op, target, outcome }), duration: grpcDuration.series({ operation: op, outcome }) }));
      child.calls.inc();
      child.duration.observe(seconds);
    },
    webhookAttempt(outcome: 'delivered' | 'failed') {
      webhookAttempts.inc({ outcome });
    },
    queued(op: ServiceOp) {
      queued.inc({ operation: op });
    },
    breakerChanged(op: ServiceOp, target: string, state: BreakerState) {
      for (const s of BREAKER_STATES) breaker.set({ operation: op, target, state: s }, s === state ? 1 : 0);
      breakerChanges.inc({ operation: op, target, state });
    },
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
