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
  /** Replica `replica` (0 by default) of a service. */
  service(op: ServiceOp, replica?: number): Spawned | undefined;
  startService(op: ServiceOp, extraEnv?: NodeJS.ProcessEnv, replica?: number): Promise<Spawned>;
  /** Sends the signal to the replica's process and, unless it is SIGSTOP/SIGCONT, waits for it to be gone. */
  signalService(op: ServiceOp, signal: NodeJS.Signals, replica?: number): Promise<void>;
  startGateway(): Promise<Spawned>;
  /** The running gateway process, if any. */
  gateway(): Spawned | undefined;
  killGateway(signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Use Redis at this URL (the gateway's outbox still lives in a temporary directory); otherwise an embedded queue there. */
  readonly redisUrl?: string;
  /** Services to start at once (default: all), each with all its replicas. */
  readonly services?: readonly ServiceOp[];
  /** Replicas per service (default 1); CALC_<OP>_TARGETS lists them all. */
  readonly replicas?: Partial<Record<ServiceOp, number>>;
  readonly env?: NodeJS.ProcessEnv;
  /** Added to the environment of every start of a service's process (restarts included), read at each start. */
  readonly serviceEnv?: (op: ServiceOp) => NodeJS.ProcessEnv | undefined;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const counts = SERVICE_OPS.map((op) => options.replicas?.[op] ?? 1);
  const all = await freePorts(counts.reduce((a, b) => a + b, 0) + 1);
  const gatewayPort = all.pop()!;
  const ports = new Map(SERVICE_OPS.map((op, i) => [op, all.splice(0, counts[i]!)]));
  // A directory of its own with Redis too: the gateway keeps its outbox there.
  const dataDir = mkdtempSync(join(tmpdir(), 'calcmesh-cluster-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CALC_GATEWAY_HOST: '127.0.0.1',
    CALC_GATEWAY_PORT: String(gatewayPort),
    CALC_SERVICE_HOST: '127.0.0.1',
    CALC_METRICS_PORT: '0',
    CALC_REDIS_URL: options.redisUrl ?? '',
    CALC_DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ...Object.fromEntries(SERVICE_OPS.map((op) => [`CALC_${op.toUpperCase()}_TARGETS`, ports.get(op)!.map((p) => `127.0.0.1:${p}`).join(',')])),
    ...options.env,
  };
  const gatewayUrl = `http://127.0.0.1:${env.CALC_GATEWAY_PORT}`;
  const services = new Map<string, Spawned>();
  const key = (op: ServiceOp, replica = 0) => `${op}#${replica}`;
  let gateway: Spawned | undefined;

  const cluster: Cluster = {
    gatewayUrl,
    env,
    service: (op, replica) => services.get(key(op, replica)),
    async startService(op, extraEnv = {}, replica = 0) {
      const port = ports.get(op)![replica];
      const child = spawnGroup(process.execPath, [CLI, 'service', op], { ...env, CALC_SERVICE_PORT: String(port), ...options.serviceEnv?.(op), ...extraEnv });
      services.set(key(op, replica), child);
      await child.waitForOutput(/service listening/, 20_000);
      return child;
    },
    async signalService(op, signal, replica) {
      const child = services.get(key(op, replica));
      if (!child) return;
      if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
        process.kill(child.child.pid!, signal);
        return;
      }
      await child.stop(signal);
      services.delete(key(op, replica));
    },
    gateway: () => gateway,
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
      rmSync(dataDir, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all((options.services ?? SERVICE_OPS).flatMap((op) => ports.get(op)!.map((_, i) => cluster.startService(op, {}, i))));
    await cluster.startGateway();
  } catch (error) {
    await cluster.close(); // a half-started cluster must not outlive the test
    throw error;
  }
  return cluster;
}
