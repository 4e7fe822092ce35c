import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildGateway, type GatewayConfig } from '../../src/gateway/build.js';
import { openQueue } from '../../src/queue/index.js';
import type { DurableQueue } from '../../src/queue/types.js';
import { silentLogger, type Logger } from '../../src/shared/logger.js';
import type { ServiceOp } from '../../src/shared/operations.js';
import { createGatewayMetrics } from '../../src/gateway/metrics.js';
import { connectUpstreams } from '../../src/gateway/upstreams.js';

export interface TestGateway {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly queue: DurableQueue;
  close(): Promise<void>;
}

/** The real gateway, listening on 127.0.0.1 on a port the OS picks, with a real queue. */
export async function startGateway(options: {
  targets: Record<ServiceOp, string[]>;
  redisUrl?: string;
  queue?: DurableQueue;
  apiKeys?: Record<string, string>;
  deadlineMs?: number;
  rateLimit?: number;
  adminKeys?: Record<string, string>;
  authFailuresPerMin?: number;
  logger?: Logger;
  /** More of the gateway's configuration (webhooks, operator keys, event streams). */
  config?: Partial<GatewayConfig>;
}): Promise<TestGateway> {
  const dir = options.redisUrl || options.queue ? undefined : mkdtempSync(join(tmpdir(), 'calcmesh-gw-'));
  const queue = options.queue ?? openQueue({ redisUrl: options.redisUrl, dataDir: dir ?? '', resultTtlS: 3600, maxDeliveries: 5 });
  const logger = options.logger ?? silentLogger();
  const metrics = createGatewayMetrics({ queue, defaultMetrics: false, logger });
  const upstreams = connectUpstreams({ targets: options.targets, breaker: { failureThreshold: 3, halfOpenAfterMs: 2000 } }, logger, metrics);
  const app = await buildGateway(
    { deadlineMs: options.deadlineMs ?? 1000, apiKeys: new Map(Object.entries(options.apiKeys ?? {})), rateLimit: options.rateLimit,
      adminKeys: new Map(Object.entries(options.adminKeys ?? {})), authFailuresPerMin: options.authFailuresPerMin, ...options.config },
    { queue, upstreams, logger, metrics },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    queue,
    async close() {
      await app.close();
      upstreams.close();
      if (!options.queue) await queue.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
  readonly text: string;
}

export async function http(url: string, init: RequestInit = {}): Promise<HttpReply> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 200)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pause));
  }
}
