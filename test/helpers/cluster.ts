/**
 * A calcmesh system of real processes, started from the built CLI exactly as a user would on
 * one host: each service and the gateway its own `calcmesh` process, on ports the OS picked.
 * A test can kill, pause and restart any of them; close() accounts for every process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_OPS, type ServiceOp } from '../../src/shared/operations.js';
import { http, waitFor } from './gateway.js';
import { freePorts } from './ports.js';
import { spawnGroup, type Spawned } from './processes.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));

export interface Cluster {
  readonly gatewayUrl: string;
  readonly env: NodeJS.ProcessEnv;
  service(op: ServiceOp): Spawned | undefined;
  startService(op: ServiceOp, extraEnv?: NodeJS.ProcessEnv): Promise<Spawned>;
  /** Sends the signal to the service's process and, unless it is SIGSTOP/SIGCONT, waits for it to be gone. */
  signalService(op: ServiceOp, signal: NodeJS.Signals): Promise<void>;
  startGateway(): Promise<Spawned>;
  killGateway(signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Use Redis at this URL; otherwise an embedded queue in a temporary directory. */
  readonly redisUrl?: string;
  /** Services to start at once (default: all). */
  readonly services?: readonly ServiceOp[];
  readonly env?: NodeJS.ProcessEnv;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const ports = await freePorts(SERVICE_OPS.length + 1);
  const dataDir = options.redisUrl ? undefined : mkdtempSync(join(tmpdir(), 'calcmesh-cluster-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CALC_GATEWAY_HOST: '127.0.0.1',
    CALC_GATEWAY_PORT: String(ports[SERVICE_OPS.length]),
    CALC_SERVICE_HOST: '127.0.0.1',
    CALC_REDIS_URL: options.redisUrl ?? '',
    CALC_DATA_DIR: dataDir ?? '',
    LOG_LEVEL: 'info',
    ...Object.fromEntries(SERVICE_OPS.map((op, i) => [`CALC_${op.toUpperCase()}_TARGETS`, `127.0.0.1:${ports[i]}`])),
    ...options.env,
  };
  const gatewayUrl = `http://127.0.0.1:${env.CALC_GATEWAY_PORT}`;
  const services = new Map<ServiceOp, Spawned>();
  let gateway: Spawned | undefined;

  const cluster: Cluster = {
    gatewayUrl,
    env,
    service: (op) => services.get(op),
    async startService(op, extraEnv = {}) {
      const port = ports[SERVICE_OPS.indexOf(op)];
      const child = spawnGroup(process.execPath, [CLI, 'service', op], { ...env, CALC_SERVICE_PORT: String(port), ...extraEnv });
      services.set(op, child);
      await child.waitForOutput(/service listening/, 20_000);
      return child;
    },
    async signalService(op, signal) {
      const child = services.get(op);
      if (!child) return;
      if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
        process.kill(child.child.pid!, signal);
        return;
      }
      await child.stop(signal);
      services.delete(op);
    },
    async startGateway() {
      gateway = spawnGroup(process.execPath, [CLI, 'gateway'], env);
      await gateway.waitForOutput(/gateway listening/, 20_000);
      await waitFor(async () => ((await http(`${gatewayUrl}/healthz`).catch(() => undefined))?.status === 200 ? true : undefined), 'gateway health');
      return gateway;
    },
    async killGateway(signal = 'SIGKILL') {
      await gateway?.stop(signal);
      gateway = undefined;
    },
    async close() {
      const all = [...services.values(), ...(gateway ? [gateway] : [])];
      for (const child of all) {
        try { process.kill(child.child.pid!, 'SIGCONT'); } catch { /* gone */ }
      }
      await Promise.all(all.map((child) => child.stop('SIGKILL').catch(() => undefined)));
      services.clear();
      gateway = undefined;
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };

  await Promise.all((options.services ?? SERVICE_OPS).map((op) => cluster.startService(op)));
  await cluster.startGateway();
  return cluster;
}
