/**
 * The chaos script: one failure at a time (but for a Redis restart now and then while a service
 * hangs), each undone before the next, on a schedule drawn from the seed. It first goes through a shuffled list of the failures every run must contain (the
 * evaluator and an add replica killed, a service paused, the gateway killed, Redis restarted),
 * then picks at random until its window closes. Every failure it causes it also repairs, even
 * when something throws, so that the run can always restore the whole system afterwards.
 */
import type { Cluster } from '../helpers/cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';
import type { Spawned } from '../helpers/processes.js';
import type { ServiceOp } from '../../src/shared/operations.js';
import type { Rng } from './rng.js';
import { sleep } from './client.js';

export type ChaosKind = 'service-kill' | 'service-stop' | 'gateway-kill' | 'redis-restart';
export const CHAOS_KINDS: readonly ChaosKind[] = ['service-kill', 'service-stop', 'gateway-kill', 'redis-restart'];

export interface ServiceTarget {
  readonly op: ServiceOp;
  readonly replica: number;
}

export const targetName = (t: ServiceTarget) => `${t.op}#${t.replica}`;

export interface ChaosEvent {
  readonly kind: ChaosKind;
  readonly target: string;
  /** The queues that fill while it lasts: the service's own, every one during a Redis restart. */
  readonly ops: readonly ServiceOp[];
  readonly startedAt: number;
  restoredAt?: number;
  /** From the repair to the first moment its queues were empty again (filled in after the run). */
  drainMs?: number;
  /** Of its queues, the last one to be empty. */
  drainedLast?: string;
  error?: string;
}

export interface MonkeyDeps {
  readonly cluster: Cluster;
  readonly redis: TestRedis;
  readonly targets: readonly ServiceTarget[];
  readonly rng: Rng;
  readonly log: (line: string) => void;
  /** Told before the monkey ends a process, so that its exit is not taken for a crash. */
  readonly expectExit: (spawned: Spawned | undefined) => void;
  /** Told of every process the monkey starts again. */
  readonly started: (name: string, spawned: Spawned) => void;
  readonly gateway: () => Spawned | undefined;
}

interface Planned {
  readonly kind: ChaosKind;
  readonly target?: ServiceTarget;
}

const ALL_OPS: readonly ServiceOp[] = ['add', 'subtract', 'multiply', 'divide', 'evaluate'];
/** Share of SIGSTOPs during which Redis is restarted too. */
const COMPOUND_SHARE = 0.35;

export class ChaosMonkey {
  readonly events: ChaosEvent[] = [];
  private readonly stopped = new Set<string>();

  constructor(private readonly deps: MonkeyDeps) {}

  /** Causes failures until `untilMs` (epoch ms), then returns with everything it broke repaired. */
  async run(untilMs: number): Promise<void> {
    const { rng } = this.deps;
    const plan = this.mustHappen();
    while (Date.now() < untilMs) {
      await this.cause(plan.shift() ?? this.randomFailure());
      if (Date.now() >= untilMs) break;
      await sleep(rng.int(150, 900));
    }
  }

  counts(): Record<ChaosKind, number> & { byTarget: Record<string, number> } {
    const counts = { 'service-kill': 0, 'service-stop': 0, 'gateway-kill': 0, 'redis-restart': 0, byTarget: {} as Record<string, number> };
    for (const e of this.events) {
      counts[e.kind] += 1;
      const key = `${e.kind} ${e.target.replace(/ \(during .*\)$/, '')}`;
      counts.byTarget[key] = (counts.byTarget[key] ?? 0) + 1;
    }
    return counts;
  }

  /** Resumes anything still paused and starts anything not running (used after the window, and on failure). */
  async restoreAll(): Promise<string[]> {
    const { cluster } = this.deps;
    const repaired: string[] = [];
    for (const name of this.stopped) {
      const [op, replica] = name.split('#') as [ServiceOp, string];
      await cluster.signalService(op, 'SIGCONT', Number(replica)).catch(() => undefined);
      repaired.push(`resumed ${name}`);
    }
    this.stopped.clear();
    for (const target of this.deps.targets) {
      const spawned = cluster.service(target.op, target.replica);
      if (spawned && spawned.child.exitCode === null && spawned.child.signalCode === null) continue;
      await this.startService(target);
      repaired.push(`started ${targetName(target)}`);
    }
    const gateway = this.deps.gateway();
    if (!gateway || gateway.child.exitCode !== null || gateway.child.signalCode !== null) {
      await this.startGateway();
      repaired.push('started the gateway');
    }
    return repaired;
  }

  private mustHappen(): Planned[] {
    const { rng, targets } = this.deps;
    const adds = targets.filter((t) => t.op === 'add');
    const evaluator = targets.find((t) => t.op === 'evaluate');
    return rng.shuffle<Planned>([
      ...(evaluator ? [{ kind: 'service-kill' as const, target: evaluator }] : []),
      ...(adds.length > 0 ? [{ kind: 'service-kill' as const, target: rng.pick(adds) }] : []),
      { kind: 'service-stop', target: rng.pick(targets) },
      { kind: 'gateway-kill' },
      { kind: 'redis-restart' },
    ]);
  }

  private randomFailure(): Planned {
    const { rng, targets } = this.deps;
    const roll = rng.next();
    if (roll < 0.4) return { kind: 'service-kill', target: rng.pick(targets) };
    if (roll < 0.6) return { kind: 'service-stop', target: rng.pick(targets) };
    if (roll < 0.8) return { kind: 'gateway-kill' };
    return { kind: 'redis-restart' };
  }

  private async cause(planned: Planned): Promise<void> {
    const { cluster, rng, log } = this.deps;
    const target = planned.target;
    const event: ChaosEvent = {
      kind: planned.kind,
      target: target ? targetName(target) : planned.kind === 'gateway-kill' ? 'gateway' : 'redis',
      ops: target ? (target.op === 'evaluate' ? ['evaluate'] : [target.op, 'evaluate']) : planned.kind === 'redis-restart' ? ALL_OPS : [],
      startedAt: Date.now(),
    };
    this.events.push(event);
    try {
      switch (planned.kind) {
        case 'service-kill': {
          const down = rng.int(200, 2000);
          log(`chaos: kill -9 ${event.target}, down for ${down} ms`);
          this.deps.expectExit(cluster.service(target!.op, target!.replica));
          await cluster.signalService(target!.op, 'SIGKILL', target!.replica);
          await sleep(down);
          await this.startService(target!);
          break;
        }
        case 'service-stop': {
          const paused = rng.int(700, 3000);
          // Now and then two failures at once: Redis restarts while the service hangs.
          const redisAfter = rng.chance(COMPOUND_SHARE) ? rng.int(0, Math.floor(paused / 2)) : undefined;
          log(`chaos: SIGSTOP ${event.target} for ${paused} ms${redisAfter === undefined ? '' : `, Redis restarted ${redisAfter} ms in`}`);
          this.stopped.add(event.target);
          await cluster.signalService(target!.op, 'SIGSTOP', target!.replica);
          const resumeAt = Date.now() + paused;
          if (redisAfter !== undefined) {
            await sleep(redisAfter);
            const restart: ChaosEvent = { kind: 'redis-restart', target: `redis (during SIGSTOP ${event.target})`, ops: ALL_OPS, startedAt: Date.now() };
            this.events.push(restart);
            await this.deps.redis.restart();
            restart.restoredAt = Date.now();
          }
          await sleep(resumeAt - Date.now());
          await cluster.signalService(target!.op, 'SIGCONT', target!.replica);
          this.stopped.delete(event.target);
          break;
        }
        case 'gateway-kill': {
          const down = rng.int(0, 800);
          log(`chaos: kill -9 the gateway, down for ${down} ms`);
          this.deps.expectExit(this.deps.gateway());
          await cluster.killGateway('SIGKILL');
          await sleep(down);
          await this.startGateway();
          break;
        }
        case 'redis-restart':
          log('chaos: restart Redis (graceful, AOF)');
          await this.deps.redis.restart();
          break;
      }
    } catch (error) {
      event.error = error instanceof Error ? error.message : String(error);
      log(`chaos: ${event.kind} ${event.target} failed: ${event.error}`);
      await this.restoreAll().catch((e) => log(`chaos: restore failed: ${String(e)}`));
    }
    event.restoredAt = Date.now();
  }

  private async startService(target: ServiceTarget): Promise<void> {
    const spawned = await this.deps.cluster.startService(target.op, {}, target.replica);
    this.deps.started(targetName(target), spawned);
  }

  private async startGateway(): Promise<void> {
    const spawned = await this.deps.cluster.startGateway();
    this.deps.started('gateway', spawned);
  }
}
