/**
 * The Redis backend: a stream and a consumer group per operation, tickets as hashes, a list of
 * completed-not-taken ticket ids per client. Every step that must not race is one Lua script
 * (src/queue/lua, each documents its KEYS, ARGV and reply). Scripts build ticket and pending keys
 * from ids they read, so the backend targets a standalone Redis (or Sentinel), not Redis Cluster.
 */
import { readFileSync } from 'node:fs';
import type { ServiceOp } from '../shared/operations.js';
import { claimedTask, entryFields, keys, parseReceipt, taskJson, ticketFields, ticketFromFlat } from './redis-codec.js';
import { replicaAcknowledgement } from './redis-wait.js';
import { DEAD_LETTER_CODE, closedError, deadLetterCap, toUnavailable } from './errors.js';
import { Connection, blockingOptions, connectionOptions, createClient, isNoGroup, type ConnectionSettings, type RedisTarget } from './redis-connection.js';
import type { ClaimOptions, ClaimedTask, Completion, DurableQueue, NewTask, OperationStats, QueueOptions, Ticket } from './types.js';

export interface RedisQueueOptions extends QueueOptions {
  /** Upper bound of one command (default 1000 ms): how long a hung Redis can hold a caller. */
  readonly commandTimeoutMs?: number;
  /** How long a consumer holding nothing may stay idle before the group forgets it (default 1 h). */
  readonly consumerIdleMs?: number;
  /** How often one queue instance looks for such consumers, per operation (default 60 s). */
  readonly pruneEveryMs?: number;
}

type Reply = string | number | null | Reply[];
interface Scripts {
  calcEnqueue(ticketKey: string, stream: string, ...argv: string[]): Promise<string[]>;
  calcComplete(stream: string, ...argv: string[]): Promise<number>;
  calcClaim(stream: string, dead: string, delayed: string, ...argv: string[]): Promise<Reply[]>;
  calcRetry(stream: string, delayed: string, ...argv: string[]): Promise<number>;
  calcTake(pending: string, limit: string, ticketPrefix: string): Promise<string[][]>;
  calcStats(stream: string, dead: string, delayed: string, group: string): Promise<[number, number, string, number]>;
  calcPrune(stream: string, group: string, idleMs: string, own: string): Promise<number>;
}

const SCRIPTS = [
  ['calcEnqueue', 'enqueue', 2],
  ['calcComplete', 'complete', 1],
  ['calcClaim', 'claim', 3],
  ['calcRetry', 'retry', 2],
  ['calcTake', 'take', 1],
  ['calcStats', 'stats', 3],
  ['calcPrune', 'prune', 1],
] as const;

export function createRedisQueue(target: RedisTarget, options: RedisQueueOptions): DurableQueue {
  const now = options.now ?? Date.now;
  const settings: ConnectionSettings = {
    commandTimeoutMs: options.commandTimeoutMs ?? 1000,
    firstConnectMs: Math.max(options.commandTimeoutMs ?? 1000, 2000),
    logger: options.logger,
  };
  const main = new Connection(createClient(target, connectionOptions(settings, 'calcmesh-queue')), settings, 'main');
  const minReplicas = typeof target === 'string' ? 0 : target.minReplicas;
  // A WAIT blocks its connection: with replicas to wait for, confirmed writes get their own.
  const writer = minReplicas > 0 ? new Connection(createClient(target, connectionOptions(settings, 'calcmesh-queue-writer')), settings, 'writer') : main;
  for (const [name, file, numberOfKeys] of SCRIPTS) {
    const lua = readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8');
    main.redis.defineCommand(name, { numberOfKeys, lua });
    if (writer !== main) writer.redis.defineCommand(name, { numberOfKeys, lua });
  }
  const scripts = main.redis as unknown as Scripts;
  const writes = writer.redis as unknown as Scripts;
  // WAIT answers before the command timeout would cut it.
  const confirm = replicaAcknowledgement(writer, minReplicas, Math.max(1, Math.floor(settings.commandTimeoutMs / 2)));
  // One blocking connection per operation, created on its first blocking claim.
  const blockers = new Map<ServiceOp, Connection>();
  const groups = new Set<ServiceOp>();
  const deadLetters = String(deadLetterCap(options.deadLetterCap));
  const consumerIdleMs = options.consumerIdleMs ?? 3_600_000;
  const pruneEveryMs = options.pruneEveryMs ?? 60_000;
  /** When each operation's group was last pruned by this instance. */
  const prunedAt = new Map<ServiceOp, number>();
  let closed = false;

  /** Runs a command once the connection is usable; every failure becomes UNAVAILABLE. */
  async function run<T>(command: () => Promise<T>, connection = main): Promise<T> {
    if (closed) throw closedError();
    try {
      await connection.ready();
      return await command();
    } catch (error) {
      connection.dropIfTimedOut(error);
      throw toUnavailable(error);
    }
  }

  /** The group starts at 0 so that tasks enqueued before any consumer existed are delivered. */
  async function ensureGroup(op: ServiceOp): Promise<void> {
    if (groups.has(op)) return;
    try {
      await main.redis.xgroup('CREATE', keys.stream(op), keys.group(op), '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
    groups.add(op);
  }

  /** Redis lost the group (restarted without persistence, stream deleted): create it again, once. */
  async function withGroup<T>(op: ServiceOp, command: () => Promise<T>): Promise<T> {
    await ensureGroup(op);
    try {
      return await command();
    } catch (error) {
      if (!isNoGroup(error)) throw error;
      groups.delete(op);
      await ensureGroup(op);
      return await command();
    }
  }

  function blocker(op: ServiceOp): Connection {
    let connection = blockers.get(op);
    if (!connection) {
      const redis = createClient(target, blockingOptions(settings, `calcmesh-queue-${op}`));
      connection = new Connection(redis, settings, `block:${op}`);
      blockers.set(op, connection);
    }
    return connection;
  }

  /** claim.lua: due retries back in, expired leases reclaimed or dead-lettered, new entries read. */
  async function claimNow(op: ServiceOp, consumer: string, max: number, leaseMs: number) {
    const reply = await scripts.calcClaim(
      keys.stream(op), keys.dead(op), keys.delayed(op),
      keys.group(op), consumer, String(leaseMs), String(max), String(options.maxDeliveries),
      keys.ticketPrefix, keys.pendingPrefix, String(options.resultTtlS), String(now()), DEAD_LETTER_CODE,
      deadLetters,
    );
    const tasks: ClaimedTask[] = [];
    for (let i = 1; i + 5 < reply.length; i += 6) {
      const [id, json, at, deliveries, retries, counter] = reply.slice(i, i + 6);
      tasks.push(claimedTask(String(id), String(json), String(at), Number(deliveries), Number(retries), Number(counter), consumer));
    }
    return { tasks, nextDueMs: Number(reply[0]) };
  }

  /**
   * prune.lua, at most once per pruneEveryMs per operation, from the claiming path. Housekeeping
   * only: its failure (Redis lost the stream, a timeout) never fails the claim that follows.
   */
  async function pruneConsumers(op: ServiceOp, consumer: string): Promise<void> {
    const at = Date.now();
    if (at - (prunedAt.get(op) ?? -Infinity) < pruneEveryMs) return;
    prunedAt.set(op, at);
    try {
      const deleted = await scripts.calcPrune(keys.stream(op), keys.group(op), String(consumerIdleMs), consumer);
      if (deleted > 0) options.logger?.info({ op, deleted }, 'queue: forgot idle consumers that held nothing');
    } catch (error) {
      options.logger?.debug({ op, err: error instanceof Error ? error.message : String(error) }, 'queue: pruning consumers failed; next try in a minute');
    }
  }

  /** Waits for new entries on the operation's own connection, so that no other command waits behind it. */
  async function readBlocking(op: ServiceOp, consumer: string, count: number, blockMs: number, signal?: AbortSignal): Promise<ClaimedTask[]> {
    const connection = blocker(op);
    const args = ['GROUP', keys.group(op), consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', keys.stream(op), '>'];
    const onAbort = () => {
      // A blocked read cannot be withdrawn; dropping its connection ends it (the next blocking
      // claim opens a new one). Entries it may have received stay pending and are reclaimed.
      blockers.delete(op);
      connection.close();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await connection.ready();
      const reply = (await connection.redis.call('XREADGROUP', args)) as [string, [string, string[]][]][] | null;
      return (reply?.[0]?.[1] ?? []).map(([id, flat]) => {
        const f = entryFields(flat);
        return claimedTask(id, f.t!, f.at!, Number(f.b ?? 0) + 1, Number(f.r ?? 0), 1, consumer);
      });
    } catch (error) {
      if (signal?.aborted) return [];
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    backend: 'redis',

    async enqueue(task: NewTask): Promise<Ticket> {
      const ticket: Ticket = {
        id: task.id,
        client: task.client,
        status: 'queued',
        operation: task.operation,
        ...(task.num1 !== undefined && { num1: task.num1 }),
        ...(task.num2 !== undefined && { num2: task.num2 }),
        ...(task.expression !== undefined && { expression: task.expression }),
        createdAt: now(),
      };
      const stored = await run(() => confirm(() =>
        writes.calcEnqueue(keys.ticket(task.id), keys.stream(task.operation), task.id, taskJson(task), String(ticket.createdAt), ...ticketFields(ticket)),
      ), writer);
      return ticketFromFlat(stored) ?? ticket;
    },

    async saveTicket(ticket: Ticket): Promise<void> {
      const key = keys.ticket(ticket.id);
      const replies = await run(() => confirm(() => writer.redis.multi().del(key).hset(key, ...ticketFields(ticket)).expire(key, options.resultTtlS).exec()), writer);
      // EXEC reports a failed command inside the transaction as a reply, not as a rejection.
      const failed = replies?.find(([error]) => error) ?? (replies ? undefined : [new Error('transaction aborted')]);
      if (failed) throw toUnavailable(failed[0]);
    },

    async getTicket(client: string, id: string): Promise<Ticket | undefined> {
      const ticket = ticketFromFlat(await run(() => main.redis.call('HGETALL', keys.ticket(id)) as Promise<string[]>));
      return ticket?.client === client ? ticket : undefined;
    },

    async takeCompleted(client: string, limit: number): Promise<Ticket[]> {
      if (limit <= 0) return [];
      const reply = await run(() => scripts.calcTake(keys.pending(client), String(limit), keys.ticketPrefix));
      return reply.map(ticketFromFlat).filter((t): t is Ticket => t !== undefined);
    },

    async reserveKey(client: string, key: string, id: string): Promise<string | undefined> {
      // SET … NX GET (Redis ≥ 7.0): sets and reports the previous holder in one command.
      const held = await run(() => confirm(() => writer.redis.call('SET', [keys.idempotency(client, key), id, 'NX', 'GET', 'EX', options.resultTtlS]) as Promise<string | null>), writer);
      return held === null || held === id ? undefined : held;
    },

    async claim(op: ServiceOp, consumer: string, max: number, claimOptions: ClaimOptions): Promise<ClaimedTask[]> {
      if (max <= 0) return [];
      const { leaseMs, blockMs, signal } = claimOptions;
      const until = Date.now() + blockMs;
      return run(() =>
        withGroup(op, async () => {
          await pruneConsumers(op, consumer);
          for (;;) {
            const { tasks, nextDueMs } = await claimNow(op, consumer, max, leaseMs);
            // Block only when empty-handed, and not past the moment a delayed task becomes due
            // (then go round again: claim.lua moves it into the stream).
            let block = tasks.length > 0 || signal?.aborted ? 0 : until - Date.now();
            if (block <= 0) return tasks;
            if (nextDueMs >= 0) block = Math.max(1, Math.min(block, nextDueMs));
            const read = await readBlocking(op, consumer, max, block, signal);
            if (read.length > 0 || Date.now() >= until || signal?.aborted) return read;
          }
        }),
      );
    },

    async complete(op: ServiceOp, completions: readonly Completion[]): Promise<void> {
      if (completions.length === 0) return;
      const argv: string[] = [keys.group(op), keys.ticketPrefix, keys.pendingPrefix, String(options.resultTtlS), String(now())];
      for (const { task, outcome } of completions) {
        const { entryId } = parseReceipt(task.receipt);
        if (outcome.ok) argv.push(entryId, task.id, 'done', String(outcome.result), '', '');
        else argv.push(entryId, task.id, 'failed', '', outcome.error.code, outcome.error.message);
      }
      await run(() => confirm(() => writes.calcComplete(keys.stream(op), ...argv)), writer);
    },

    async retryLater(op: ServiceOp, task: ClaimedTask, delayMs: number): Promise<void> {
      const { entryId, counter, consumer } = parseReceipt(task.receipt);
      await run(() =>
        scripts.calcRetry(keys.stream(op), keys.delayed(op), keys.group(op), entryId, consumer, counter, String(Math.max(0, Math.round(delayMs)))),
      );
    },

    async stats(operations: readonly ServiceOp[]): Promise<Record<string, OperationStats>> {
      const replies = await run(() =>
        Promise.all(operations.map((op) => scripts.calcStats(keys.stream(op), keys.dead(op), keys.delayed(op), keys.group(op)))),
      );
      const at = now();
      const result: Record<string, OperationStats> = {};
      operations.forEach((op, i) => {
        const [depth, inFlight, oldest, deadLetters] = replies[i]!;
        result[op] = { depth, inFlight, oldestAgeMs: oldest === '' ? 0 : Math.max(0, at - Number(oldest)), deadLetters };
      });
      return result;
    },

    async ping(): Promise<void> {
      await run(() => main.redis.ping());
    },

    async close(): Promise<void> {
      closed = true;
      for (const connection of blockers.values()) connection.close();
      blockers.clear();
      main.close();
      if (writer !== main) writer.close();
    },
  };
}
