/**
 * `calcmesh probe [gateway | service <op> | relay <op>]`: exit 0 when the local component
 * answers its readiness check, 1 otherwise — the container healthcheck, so that an image needs
 * no curl. The gateway is asked `GET /readyz`; a service `grpc.health.v1.Health/Check`; a relay
 * (which listens on nothing) is ready when one of the replicas it forwards to answers health
 * (UNIMPLEMENTED counts: an original Python service has no health service and is still used).
 * Without a role, the role is read from the command line of the container's main process (pid 1),
 * so one image-wide HEALTHCHECK serves every role.
 */
import { readFileSync } from 'node:fs';
import { credentials, makeGenericClientConstructor, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import type { Config } from '../shared/config.js';
import { isServiceOp, DEFAULT_PORTS, SERVICE_OPS, type ServiceOp } from '../shared/operations.js';
import { grpcCredentials } from '../shared/tls.js';

export type ProbeRole = { readonly role: 'gateway' } | { readonly role: 'service' | 'relay'; readonly op: ServiceOp };

const HealthClient = makeGenericClientConstructor(healthService, 'Health');

/** A wildcard listen address is probed on loopback, where the component also answers. */
function local(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** The role in a calcmesh command line (`node bin/calcmesh.js service add`, `calcmesh gateway`, behind an init or not). */
export function roleOfCommandLine(argv: readonly string[]): ProbeRole | undefined {
  const at = argv.findIndex((arg) => /(^|\/)calcmesh(\.js)?$/.test(arg));
  if (at < 0) return undefined;
  const [role, op] = argv.slice(at + 1).filter((arg) => !arg.startsWith('-'));
  if (role === 'gateway') return { role };
  if ((role === 'service' || role === 'relay') && op !== undefined && isServiceOp(op)) return { role, op };
  return undefined;
}

function roleOfPid1(): ProbeRole | undefined {
  try {
    return roleOfCommandLine(readFileSync('/proc/1/cmdline', 'utf8').split('\0').filter(Boolean));
  } catch {
    return undefined;
  }
}

export function parseProbeRole(role: string | undefined, op: string | undefined): ProbeRole {
  if (role === undefined) {
    const found = roleOfPid1();
    if (!found) throw new Error('no role given and pid 1 is not a calcmesh gateway, service or relay: calcmesh probe gateway | service <op> | relay <op>');
    return found;
  }
  if (role === 'gateway') return { role };
  if (role !== 'service' && role !== 'relay') throw new Error(`unknown role ${JSON.stringify(role)}; expected gateway, service or relay`);
  if (op === undefined || !isServiceOp(op)) throw new Error(`calcmesh probe ${role} <op>: op is one of ${SERVICE_OPS.join(', ')}`);
  return { role, op };
}

async function probeGateway(url: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  try {
    const response = await fetch(new URL('/readyz', url), { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return { ok: response.status === 200, detail: `${url}/readyz answered ${response.status}` };
  } catch (error) {
    return { ok: false, detail: `${url}/readyz: ${(error as Error).message}` };
  }
}

/** One grpc.health.v1 Check of the whole server (service ''). */
function checkHealth(target: string, creds: ChannelCredentials, timeoutMs: number): Promise<'SERVING' | 'NOT_SERVING' | 'UNIMPLEMENTED' | 'UNREACHABLE'> {
  const client = new HealthClient(target, creds);
  return new Promise((resolve) => {
    (client as unknown as { check: Function }).check({ service: '' }, { deadline: Date.now() + timeoutMs }, (error: ServiceError | null, reply?: { status: string }) => {
      client.close();
      if (error) resolve(error.code === status.UNIMPLEMENTED ? 'UNIMPLEMENTED' : 'UNREACHABLE');
      else resolve(reply?.status === 'SERVING' ? 'SERVING' : 'NOT_SERVING');
    });
  });
}

/** Runs the probe the role needs; returns the exit code (0 ready, 1 not) and a line saying why. */
export async function probe(role: ProbeRole, config: Config, timeoutMs: number): Promise<{ code: 0 | 1; detail: string }> {
  if (role.role === 'gateway') {
    const { ok, detail } = await probeGateway(`http://${local(config.gateway.host)}:${config.gateway.port}`, timeoutMs);
    return { code: ok ? 0 : 1, detail };
  }
  const creds = config.tls.caFile || config.tls.certFile ? grpcCredentials(config.tls).client : credentials.createInsecure();
  if (role.role === 'service') {
    const target = `${local(config.service.host)}:${config.service.port ?? DEFAULT_PORTS[role.op]}`;
    const health = await checkHealth(target, creds, timeoutMs);
    return { code: health === 'SERVING' ? 0 : 1, detail: `${role.op} at ${target}: ${health}` };
  }
  const answers = await Promise.all(config.targets[role.op].map(async (target) => `${target} ${await checkHealth(target, creds, timeoutMs)}`));
  const usable = answers.some((answer) => / (SERVING|UNIMPLEMENTED)$/.test(answer));
  return { code: usable ? 0 : 1, detail: `relay ${role.op} targets: ${answers.join(', ')}` };
}
