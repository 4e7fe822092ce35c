/**
 * Drives deploy/netns-cluster.sh for a test: a prefix and a subnet of its own (so a developer's
 * cluster and a parallel run are never touched), the script's commands, and the accounting of
 * what must be gone afterwards. The prefix carries the test process's pid, so a later run can
 * remove what a killed run (SIGKILL, where no hook runs) left behind.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SCRIPT = fileURLToPath(new URL('../../deploy/netns-cluster.sh', import.meta.url));
const HOSTS = ['gateway', 'redis', 'add', 'subtract', 'multiply', 'divide', 'evaluate'] as const;
const OCTETS: Record<(typeof HOSTS)[number], number> = { gateway: 10, redis: 11, add: 12, subtract: 13, multiply: 14, divide: 15, evaluate: 16 };
/** "cn" + the owner's pid (5 base-36 digits) + 2 random characters: 9 of the 10 allowed. */
const TEST_PREFIX = /^cn([0-9a-z]{5})[0-9a-z]{2}$/;
const run = promisify(execFile);

export type Host = (typeof HOSTS)[number];

export interface NetnsCluster {
  readonly prefix: string;
  readonly subnet: string;
  readonly runDir: string;
  readonly gatewayUrl: string;
  address(host: Host): string;
  up(): Promise<void>;
  cut(host: Host): Promise<void>;
  heal(host: Host): Promise<void>;
  /** Idempotent; synchronous so that it can run from an 'exit' handler too. */
  down(): void;
  /** The pids the script recorded (read before down, to check afterwards that they are gone). */
  pids(): number[];
  /** What is left of this cluster on the machine: namespaces, links, live processes. */
  leftovers(pids: readonly number[]): string[];
  log(host: Host): string;
}

/** Fails with a message saying what is missing; a partition test never skips silently. */
export function requireNetns(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('the partition test needs root (network namespaces, veths, a bridge): run it as root, as CI does');
  }
  const probe = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`'ip netns' is unavailable (${probe.error?.message ?? probe.stderr.trim()}): install iproute2 and run where network namespaces are allowed`);
  }
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not on PATH: install the Debian package `redis-server` (apt-get install redis-server)');
  }
}

/** Removes the clusters of earlier runs of this test whose process is gone. */
export function sweepOrphans(): string[] {
  const swept: string[] = [];
  for (const name of netnsNames()) {
    const prefix = name.endsWith('-gateway') ? name.slice(0, -'-gateway'.length) : '';
    const owner = TEST_PREFIX.exec(prefix)?.[1];
    if (!owner || isAlive(parseInt(owner, 36))) continue;
    script(prefix, subnetOf(prefix), ['down']);
    swept.push(prefix);
  }
  return swept;
}

export function createNetnsCluster(env: NodeJS.ProcessEnv): NetnsCluster {
  const prefix = `cn${process.pid.toString(36).padStart(5, '0')}${Math.random().toString(36).slice(2, 4).padEnd(2, '0')}`;
  const subnet = freeSubnet();
  const runDir = join(tmpdir(), `calcmesh-netns-${prefix}`);
  const scriptEnv = { ...process.env, ...env, CALC_NETNS_PREFIX: prefix, CALC_NETNS_SUBNET: subnet, CALC_NETNS_RUN: runDir };
  const address = (host: Host) => `${subnet}.${OCTETS[host]}`;
  const call = async (...args: string[]) => {
    try {
      await run('bash', [SCRIPT, ...args], { env: scriptEnv, timeout: 90_000 });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`netns-cluster.sh ${args.join(' ')} failed: ${(error as Error).message}\n${stdout ?? ''}${stderr ?? ''}`);
    }
  };

  return {
    prefix,
    subnet,
    runDir,
    gatewayUrl: `http://${address('gateway')}:8000`,
    address,
    up: () => call('up'),
    cut: (host) => call('cut', host, 'loss'),
    heal: (host) => call('heal', host),
    down() {
      const result = spawnSync('bash', [SCRIPT, 'down'], { env: scriptEnv, encoding: 'utf8', timeout: 60_000 });
      if (result.status !== 0) throw new Error(`netns-cluster.sh down failed: ${result.error?.message ?? ''}${result.stdout}${result.stderr}`);
    },
    pids() {
      try {
        return readdirSync(join(runDir, 'pids')).map((file) => Number(readFileSync(join(runDir, 'pids', file), 'utf8').trim()));
      } catch {
        return [];
      }
    },
    leftovers(pids) {
      const left = netnsNames().filter((name) => name.startsWith(`${prefix}-`)).map((name) => `namespace ${name}`);
      const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
      for (const line of links.split('\n')) {
        const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
        if (name?.startsWith(prefix)) left.push(`link ${name}`);
      }
      for (const pid of pids) if (isAlive(pid)) left.push(`process ${pid}`);
      return left;
    },
    log: (host) => readFileSync(join(runDir, 'logs', `${host}.log`), 'utf8'),
  };
}

function script(prefix: string, subnet: string, args: string[]): void {
  spawnSync('bash', [SCRIPT, ...args], {
    env: { ...process.env, CALC_NETNS_PREFIX: prefix, CALC_NETNS_SUBNET: subnet, CALC_NETNS_RUN: join(tmpdir(), `calcmesh-netns-${prefix}`) },
    stdio: 'ignore',
    timeout: 60_000,
  });
}

function netnsNames(): string[] {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return list.split('\n').map((line) => line.split(' ')[0]!).filter(Boolean);
}

/** A /24 under 10.231 that no interface here uses yet. */
function freeSubnet(): string {
  const used = spawnSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout;
  for (let attempt = 0; attempt < 50; attempt++) {
    const subnet = `10.231.${100 + Math.floor(Math.random() * 150)}`;
    if (!used.includes(` ${subnet}.`)) return subnet;
  }
  throw new Error('no free /24 under 10.231.100-249 for the partition test');
}

/** The subnet a cluster's bridge holds (down only needs it to be well formed). */
function subnetOf(prefix: string): string {
  const addr = spawnSync('ip', ['-4', '-o', 'addr', 'show', 'dev', `${prefix}br0`], { encoding: 'utf8' }).stdout;
  return /inet (\d+\.\d+\.\d+)\.1\//.exec(addr)?.[1] ?? '10.231.7';
}

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
