/**
 * A service's own Prometheus metrics, served on a small HTTP port of its own
 * (CALC_METRICS_PORT, by default the gRPC port + 1000): its rpcs, the tasks it drained from its
 * queue, and the process defaults.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram, SeriesCache, type CounterSeries, type HistogramSeries } from '../shared/hot-metrics.js';
import type { Logger } from '../shared/logger.js';
import type { ServiceOp } from '../shared/operations.js';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

export function createServiceMetrics(op: ServiceOp) {
  const registry = new Registry();
  registry.setDefaultLabels({ service: op });
  collectDefaultMetrics({ register: registry });
  const calls = new HotCounter({ name: 'calcmesh_grpc_server_calls_total', help: 'rpcs served, by rpc and outcome (OK or the calcmesh error code)', labelNames: ['rpc', 'outcome'], registers: [registry] });
  const duration = new HotHistogram({ name: 'calcmesh_grpc_server_duration_seconds', help: 'rpc handling time', labelNames: ['rpc', 'outcome'], buckets: BUCKETS, registers: [registry] });
  const drained = new HotCounter({ name: 'calcmesh_tasks_drained_total', help: 'queued tasks completed by this replica, by outcome (done or failed)', labelNames: ['operation', 'outcome'], registers: [registry] });
  // Looked up once (hot-metrics.ts): these run on every call and every drained task.
  const drainedDone = drained.series({ operation: op, outcome: 'done' });
  const drainedFailed = drained.series({ operation: op, outcome: 'failed' });
  const callSeries = new SeriesCache<{ calls: CounterSeries; duration: HistogramSeries }>();
  const retried = new Counter({ name: 'calcmesh_tasks_retried_total', help: 'queued tasks given back to retry later (a service they need is unavailable)', labelNames: ['operation'], registers: [registry] });

  return {
    registry,
    observeCall(rpc: string, outcome: string, seconds: number) {
      const series = callSeries.get(rpc, outcome, '', () => ({ calls: calls.series({ rpc, outcome }), duration: duration.series({ rpc, outcome }) }));
      series.calls.inc();
      series.duration.observe(seconds);
    },
    drained(outcome: 'done' | 'failed') {
      (outcome === 'done' ? drainedDone : drainedFailed).inc();
    },
    retried() {
      retried.inc({ operation: op });
    },
  };
}

export type ServiceMetrics = ReturnType<typeof createServiceMetrics>;

/** Serves GET /metrics; a port that cannot be bound is logged, never fatal to the service. */
export function serveMetrics(metrics: ServiceMetrics, host: string, port: number, logger: Logger): Server {
  const server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      // A collector that throws must cost one scrape, never the service (an unhandled rejection would end it).
      metrics.registry.metrics().then((text) => {
        response.writeHead(200, { 'content-type': metrics.registry.contentType });
        response.end(text);
      }).catch((error: unknown) => {
        logger.warn({ err: error }, 'metrics collection failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'metrics collection failed' } }));
      });
      return;
    }
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'only GET /metrics is served here' } }));
  });
  server.on('error', (error) => logger.warn({ err: error, port }, 'metrics port unavailable; metrics are not served'));
  server.listen(port, host, () => logger.info({ port: (server.address() as { port: number }).port }, 'metrics listening'));
  return server;
}
