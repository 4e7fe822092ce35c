/**
 * A calcmesh system of real processes for one benchmark case, started from the compiled CLI as a
 * user would (`node bin/calcmesh.js gateway | service <op>`), on free ports of 127.0.0.1 only,
 * with LOG_LEVEL=warn. A service left out of `services` has a target that nothing listens on:
 * the gateway finds it unavailable and queues.
 */
import { fileURLToPath } from 'node:url';
import { SERVICE_OPS, type ServiceOp } from '../src/shared/operations.js';
import { freePorts } from '../test/helpers/ports.js';
import { httpOk, spawnProc, tcpAccepts, waitUntil, type Proc } from './procs.js';

export const CLI = fileURLToPath(new URL('../bin/calcmesh.js', import.meta.url));
export const SERVER_LOG_LEVEL = 'warn';

export interface QueueLocation {
  /** Redis Streams at this URL; otherwise the embedded SQLite queue in `dataDir`. */
  readonly redisUrl?: string;
  readonly dataDir: string;
}

export interface System {
  readonly url: string;
  readonly gateway: Proc | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** The port of a service's (first) target. */
  port(op: ServiceOp): number;
  startService(op: ServiceOp): Promise<Proc>;
  startGateway(nodeArgs?: readonly string[]): Promise<Proc>;
  close(): Promise<void>;
}

export interface SystemOptions {
  readonly queue: QueueLocation;
  readonly logDir: string;
  /** Services started before the gateway (default none). */
  readonly services?: readonly ServiceOp[];
  /** Start the gateway too (default true). */
  readonly gateway?: boolean;
  /** Extra environment for every server (e.g. CALC_GRPC_CLIENT). */
  readonly env?: NodeJS.ProcessEnv;
}

export async function startSystem(options: SystemOptions): Promise<System> {
  const ports = await freePorts(SERVICE_OPS.length + 1);
  const portOf = (op: ServiceOp) => ports[SERVICE_OPS.indexOf(op)]!;
  const gatewayPort = ports[SERVICE_OPS.length]!;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: SERVER_LOG_LEVEL,
    CALC_GATEWAY_HOST: '127.0.0.1',
    CALC_GATEWAY_PORT: String(gatewayPort),
    CALC_SERVICE_HOST: '127.0.0.1',
    CALC_REDIS_URL: options.queue.redisUrl ?? '',
    CALC_DATA_DIR: options.queue.dataDir,
    ...Object.fromEntries(SERVICE_OPS.map((op) => [`CALC_${op.toUpperCase()}_TARGETS`, `127.0.0.1:${portOf(op)}`])),
    ...options.env,
  };
  const url = `http://127.0.0.1:${gatewayPort}`;
  const started: Proc[] = [];
  let gateway: Proc | undefined;

  const system: System = {
    url,
    env,
    port: portOf,
    get gateway() {
      return gateway;
    },
    async startService(op) {
      const proc = spawnProc(`service-${op}`, process.execPath, [CLI, 'service', op], { ...env, CALC_SERVICE_PORT: String(portOf(op)) }, options.logDir);
      started.push(proc);
      await waitUntil(`the ${op} service to listen`, () => tcpAccepts(portOf(op)), proc);
      return proc;
    },
    async startGateway(nodeArgs = []) {
      gateway = spawnProc('gateway', process.execPath, [...nodeArgs, CLI, 'gateway'], env, options.logDir);
      started.push(gateway);
      await waitUntil('the gateway to answer /healthz', () => httpOk(`${url}/healthz`), gateway);
      return gateway;
    },
    async close() {
      await Promise.all(started.map((proc) => proc.stop('SIGTERM', 5000)));
      started.length = 0;
    },
  };

  try {
    await Promise.all((options.services ?? []).map((op) => system.startService(op)));
    if (options.gateway ?? true) await system.startGateway();
  } catch (error) {
    await system.close();
    throw error;
  }
  return system;
}
