/**
 * The Redis backend: a stream and a consumer group per operation, tickets as hashes, a list of
 * completed-not-taken ticket ids per client. Every step that must not race is one Lua script
 * (src/queue/lua, each documents its KEYS, ARGV and reply). Scripts build ticket and pending keys
 * from ids they read and from prefixes they are given; in Redis Cluster (and with partitions)
 * those prefixes carry the hash tag of the script's stream (redis-codec.ts keyLayout), so every
 * key a script touches is in its one slot. With CALC_REDIS_MIN_REPLICAS, writes are confirmed by
 * WAIT on a connection of their own (redis-wait.ts).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SERVICE_OPS, type ServiceOp } from '../shared/operations.js';
import { decodedTask, entryFields, keyLayout, parseReceipt, taskJson, ticketFields, ticketFromFlat } from './redis-codec.js';
import { replicaAcknowledgement } from './redis-wait.js';
import { DEAD_LETTER_CODE, closedError, deadLetterCap, toUnavailable } from './errors.js';
import { redisDeadLetters } from './redis-dead-letters.js';
import { redisDelivery } from './redis-delivery.js';
import { Connection, blockingOptions, connectionOptions, createClient, isNoGroup, type ConnectionSettings, type RedisTarget } from './redis-connection.js';
import type { ClaimOptions, ClaimedTask, Completion, DurableQueue, NewTask, OperationStats, QueueOptions, Ticket } from './types.js';
import { queuedTicket } from './tickets.js';


export interface RedisQueueOptions extends QueueOptions {
  /** Upper bound of one command (default 1000 ms): how long a hung Redis can hold a caller. */
  readonly commandTimeoutMs?: number;
  /** How long a consumer holding nothing may stay idle before the group forgets it (default 1 h). */
  readonly consumerIdleMs?: number;
  /** How often one queue instance looks for such consumers, per operation (default 60 s). */
  readonly pruneEveryMs?: number;
  /**
   * While new entries are plentiful, how often a claim still goes through claim.lua for its
   * housekeeping (retries due, leases expired, dead letters, the last claim's time; default
   * 100 ms); the claims in between read new entries with a plain XREADGROUP.
   */
  readonly sweepEveryMs?: number;
}

type Reply = string | number | null | Reply[];
/** XREADGROUP's reply for one stream: its entries, each an id and its fields (flat). */
type StreamReply = [string, [string, string[]][]][] | null;
interface Scripts {
  calcEnqueue(ticketKey: string, stream: string, ...argv: string[]): Promise<string[]>;
  calcComplete(stream: string, webhooks: string, ...argv: string[]): Promise<number>;
  calcClaim(stream: string, dead: string, delayed: string, lastClaim: string, webhooks: string, ...argv: string[]): Promise<Reply[]>;
  calcExtend(stream: string, ...argv: string[]): Promise<number>;
  calcTakeover(key: string, expected: string, next: string): Promise<number>;
  calcRetry(stream: string, delayed: string, ...argv: string[]): Promise<number>;
  calcTake(pending: string, limit: string, ticketPrefix: string): Promise<string[][]>;
  calcStats(stream: string, dead: string, delayed: string, lastClaim: string, group: string): Promise<[number, number, string, number, string]>;
  calcPrune(stream: string, group: string, idleMs: string, own: string): Promise<number>;
}

/** How a partitioned or clustered queue paces its polling claims when it finds nothing. */
const POLL_MIN_MS = 5;
const POLL_MAX_MS = 100;

const SCRIPTS = [
  ['calcEnqueue', 'enqueue', 2],
  ['calcComplete', 'complete', 2],
  ['calcClaim', 'claim', 5],
  ['calcExtend', 'extend', 1],
  ['calcTakeover', 'takeover', 1],
  ['calcRetry', 'retry', 2],
  ['calcTake', 'take', 1],
  ['calcStats', 'stats', 4],
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
  const clustered = typeof target !== 'string' && target.topology === 'cluster';
  const partitionCount = typeof target === 'string' ? 1 : target.partitions;
  if (clustered && minReplicas > 0) throw new RangeError('minReplicas is not supported on Redis Cluster yet');
  const L = keyLayout(clustered || partitionCount > 1, partitionCount);
  const partitions = Array.from({ length: L.partitions }, (_, p) => p);
  // Blocking reads wait on one stream of one node; partitioned or clustered queues poll instead.
  const canBlock = !L.tagged && !clustered;
  /** Where the next claim of an operation starts, so that no partition starves. */
  const nextPartition = new Map<ServiceOp, number>();
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
  const groups = new Set<string>();
  // Each partition trims its own dead letters (one slot each): the cap is shared out between them.
  const deadLetters = String(Math.ceil(deadLetterCap(options.deadLetterCap) / L.partitions));
  const consumerIdleMs = options.consumerIdleMs ?? 3_600_000;
  const pruneEveryMs = options.pruneEveryMs ?? 60_000;
  /** When each operation's group was last pruned by this instance. */
  const prunedAt = new Map<string, number>();
  /** When this instance last claimed through claim.lua, per stream. */
  const sweptAt = new Map<string, number>();
  const sweepEveryMs = options.sweepEveryMs ?? 100;
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
  async function ensureGroup(op: ServiceOp, p: number): Promise<void> {
    const stream = L.stream(op, p);
    if (groups.has(stream)) return;
    try {
      await main.redis.xgroup('CREATE', stream, L.group(op), '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
    groups.add(stream);
  }

  /** Redis lost the group (restarted without persistence, stream deleted, a failover): create it again, once. */
  async function withGroup<T>(op: ServiceOp, p: number, command: () => Promise<T>): Promise<T> {
    await ensureGroup(op, p);
    try {
      return await command();
    } catch (error) {
      if (!isNoGroup(error)) throw error;
      groups.delete(L.stream(op, p));
      await ensureGroup(op, p);
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

  /**
   * claim.lua: due retries back in, expired leases reclaimed or dead-lettered, new entries read.
   * Its housekeeping is needed once in a while, not per claim: between passes (sweepEveryMs) a
   * plain XREADGROUP reads new entries (bench/drain-profile.ts, five pairs: Redis CPU per drained
   * task, median, 21.8 → 17.7 µs: the script's Lua tables of every entry are gone), and a read that
   * finds nothing new goes on to the script, so an idle or drained stream is always swept. The
   * task JSON is decoded here only: an entry that does not decode goes back to claim.lua at once,
   * which dead-letters it and claims in its place.
   */
  async function claimNow(op: ServiceOp, p: number, consumer: string, max: number, leaseMs: number) {
    const stream = L.stream(op, p);
    const at = Date.now();
    let tasks: ClaimedTask[] = [];
    let undecodable: string[] = [];
    if (at - (sweptAt.get(stream) ?? -Infinity) < sweepEveryMs) {
      // Lower case: the name the connection's autoPipeliningIgnoredCommands lists.
      const reply = (await main.redis.call('xreadgroup', ['GROUP', L.group(op), consumer, 'COUNT', max, 'STREAMS', stream, '>'])) as StreamReply;
      ({ tasks, undecodable } = readEntries(reply, consumer));
      if (tasks.length > 0 && undecodable.length === 0) return { tasks, nextDueMs: -1 };
    }
    sweptAt.set(stream, at);
    for (;;) {
      const reply = await scripts.calcClaim(
        stream, L.dead(op, p), L.delayed(op, p), L.lastClaim(op, p), L.webhooks(op, p),
        L.group(op), consumer, String(leaseMs), String(max - tasks.length), String(options.maxDeliveries),
        L.ticketPrefix(op, p), L.pendingPrefix(op, p), String(options.resultTtlS), String(now()), DEAD_LETTER_CODE,
        deadLetters, ...undecodable,
      );
      undecodable = [];
      for (let i = 1; i + 5 < reply.length; i += 6) {
        const entryId = String(reply[i]);
        const task = decodedTask(entryId, String(reply[i + 1]), String(reply[i + 2]), Number(reply[i + 3]), Number(reply[i + 4]), Number(reply[i + 5]), consumer);
        if (task) tasks.push(task);
        else undecodable.push(entryId);
      }
      if (undecodable.length === 0) return { tasks, nextDueMs: Number(reply[0]) };
    }
  }

  /**
   * prune.lua, at most once per pruneEveryMs per operation, from the claiming path. Housekeeping
   * only: its failure (Redis lost the stream, a timeout) never fails the claim that follows.
   */
  async function pruneConsumers(op: ServiceOp, p: number, consumer: string): Promise<void> {
    const at = Date.now();
    const stream = L.stream(op, p);
    if (at - (prunedAt.get(stream) ?? -Infinity) < pruneEveryMs) return;
    prunedAt.set(stream, at);
    try {
      const deleted = await scripts.calcPrune(stream, L.group(op), String(consumerIdleMs), consumer);
      if (deleted > 0) options.logger?.info({ op, deleted }, 'queue: forgot idle consumers that held nothing');
    } catch (error) {
      options.logger?.debug({ op, err: error instanceof Error ? error.message : String(error) }, 'queue: pruning consumers failed; next try in a minute');
    }
  }

  /**
   * Partitioned or clustered: every partition once per round, from a rotating start, without
   * blocking (a blocking read waits on one node only); empty-handed, polls at a growing pace
   * until `until`. Tasks already claimed are returned even when a later partition fails.
   */
  async function claimPolling(op: ServiceOp, consumer: string, max: number, leaseMs: number, until: number, signal?: AbortSignal): Promise<ClaimedTask[]> {
    for (let pause = POLL_MIN_MS; ; pause = Math.min(pause * 2, POLL_MAX_MS)) {
      const start = nextPartition.get(op) ?? 0;
      nextPartition.set(op, (start + 1) % L.partitions);
      const tasks: ClaimedTask[] = [];
      for (let i = 0; i < L.partitions && tasks.length < max; i++) {
        const p = (start + i) % L.partitions;
        try {
          tasks.push(...(await withGroup(op, p, async () => {
            await pruneConsumers(op, p, consumer);
            return (await claimNow(op, p, consumer, max - tasks.length, leaseMs)).tasks;
          })));
        } catch (error) {
          if (tasks.length === 0) throw error;
          return tasks;
        }
      }
      const left = until - Date.now();
      if (tasks.length > 0 || left <= 0 || signal?.aborted) return tasks;
      await sleep(Math.min(pause, left), undefined, { signal }).catch(() => undefined);
    }
  }

  /** Waits for new entries on the operation's own connection, so that no other command waits behind it. */
  async function readBlocking(op: ServiceOp, consumer: string, count: number, blockMs: number, signal?: AbortSignal): Promise<ClaimedTask[]> {
    const connection = blocker(op);
    const args = ['GROUP', L.group(op), consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', L.stream(op, 0), '>'];
    const onAbort = () => {
      // A blocked read cannot be withdrawn; dropping its connection ends it (the next blocking
      // claim opens a new one). Entries it may have received stay pending and are reclaimed.
      blockers.delete(op);
      connection.close();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await connection.ready();
      // An entry that does not decode is left pending: once its lease is over claim.lua
      // dead-letters it; it never fails this claim.
      return readEntries((await connection.redis.call('XREADGROUP', args)) as StreamReply, consumer).tasks;
    } catch (error) {
      if (signal?.aborted) return [];
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  const delivery = redisDelivery(main.redis, run, { resultTtlS: options.resultTtlS, now, layout: L });
  const { remember, ...channels } = delivery;

  return {
    backend: 'redis',
    ...channels,
    ...redisDeadLetters(main.redis, run, SERVICE_OPS, L),

    async enqueue(task: NewTask): Promise<Ticket> {
      const ticket = queuedTicket(task, now());
      const p = L.partitionOf(task.id);
      // The history index is sent alongside, without waiting for its reply (no second round
      // trip); the index is a hint: a dangling entry is skipped when listed.
      const [, stored] = await Promise.all([
        remember(ticket),
        run(() => confirm(() =>
          writes.calcEnqueue(L.ticket(task.operation, p, task.id), L.stream(task.operation, p), task.id, taskJson(task), String(ticket.createdAt), ...ticketFields(ticket)),
        ), writer),
      ]);
      return ticketFromFlat(stored) ?? ticket;
    },

    async saveTicket(ticket: Ticket): Promise<void> {
      const key = L.ticket(ticket.operation, L.partitionOf(ticket.id), ticket.id);
      // As in enqueue: the history index goes alongside, not one round trip before.
      const [, replies] = await Promise.all([
        remember(ticket),
        run(() => confirm(() => writer.redis.multi().del(key).hset(key, ...ticketFields(ticket)).expire(key, options.resultTtlS).exec()), writer),
      ]);
      // EXEC reports a failed command inside the transaction as a reply, not as a rejection.
      const failed = replies?.find(([error]) => error) ?? (replies ? undefined : [new Error('transaction aborted')]);
      if (failed) throw toUnavailable(failed[0]);
    },

    async getTicket(client: string, id: string): Promise<Ticket | undefined> {
      // Tagged, a ticket is in the tag of its operation: one read per operation, in parallel.
      const p = L.partitionOf(id);
      const candidates = L.tagged ? SERVICE_OPS.map((op) => L.ticket(op, p, id)) : [L.ticket('add', 0, id)];
      const found = await run(() => Promise.all(candidates.map((key) => main.redis.call('HGETALL', key) as Promise<string[]>)));
      const ticket = found.map(ticketFromFlat).find((t) => t !== undefined);
      return ticket?.client === client ? ticket : undefined;
    },

    async takeCompleted(client: string, limit: number): Promise<Ticket[]> {
      if (limit <= 0) return [];
      const lists = L.tagged ? SERVICE_OPS.flatMap((op) => partitions.map((p) => [op, p] as const)) : [['add', 0] as const];
      const taken: Ticket[] = [];
      // Each list is popped atomically; tagged, a client's tickets are spread over the lists.
      for (const [op, p] of lists) {
        if (taken.length >= limit) break;
        try {
          const reply = await run(() => scripts.calcTake(L.pending(op, p, client), String(limit - taken.length), L.ticketPrefix(op, p)));
          taken.push(...reply.map(ticketFromFlat).filter((t): t is Ticket => t !== undefined));
        } catch (error) {
          // What was popped already must reach the client: never drop it for a later list's failure.
          if (taken.length === 0) throw error;
          break;
        }
      }
      return L.tagged ? taken.sort((a, b) => (a.completedAt ?? 0) - (b.completedAt ?? 0)) : taken;
    },

    async reserveKey(client: string, key: string, id: string): Promise<string | undefined> {
      // SET … NX GET (Redis ≥ 7.0): sets and reports the previous holder in one command.
      const held = await run(() => confirm(() => writer.redis.call('SET', [L.idempotency(client, key), id, 'NX', 'GET', 'EX', options.resultTtlS]) as Promise<string | null>), writer);
      return held === null || held === id ? undefined : held;
    },

    async claim(op: ServiceOp, consumer: string, max: number, claimOptions: ClaimOptions): Promise<ClaimedTask[]> {
      if (max <= 0) return [];
      const { leaseMs, blockMs, signal } = claimOptions;
      const until = Date.now() + blockMs;
      if (!canBlock) return run(() => claimPolling(op, consumer, max, leaseMs, until, signal));
      return run(() =>
        withGroup(op, 0, async () => {
          await pruneConsumers(op, 0, consumer);
          for (;;) {
            const { tasks, nextDueMs } = await claimNow(op, 0, consumer, max, leaseMs);
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
      // One script per partition (tagged: one slot each); untagged, all of them in one.
      const byPartition = new Map<number, string[]>();
      for (const { task, outcome } of completions) {
        const p = L.partitionOf(task.id);
        let argv = byPartition.get(p);
        if (!argv) byPartition.set(p, (argv = [L.group(op), L.ticketPrefix(op, p), L.pendingPrefix(op, p), String(options.resultTtlS), String(now())]));
        const { entryId } = parseReceipt(task.receipt);
        if (outcome.ok) argv.push(entryId, task.id, 'done', String(outcome.result));
        else argv.push(entryId, task.id, 'failed', outcome.error.code, outcome.error.message);
      }
      await run(() => Promise.all([...byPartition].map(([p, argv]) => confirm(() => writes.calcComplete(L.stream(op, p), L.webhooks(op, p), ...argv)))), writer);
    },

    async extend(op: ServiceOp, consumer: string, tasks: readonly ClaimedTask[], _leaseMs: number): Promise<number> {
      // Redis measures a lease as the entry's idle time against the claimer's leaseMs: resetting
      // the idle time is the extension.
      const byPartition = new Map<number, string[]>();
      for (const task of tasks) {
        const receipt = parseReceipt(task.receipt);
        if (receipt.consumer !== consumer) continue;
        const p = L.partitionOf(task.id);
        byPartition.set(p, [...(byPartition.get(p) ?? []), receipt.entryId, receipt.counter]);
      }
      if (byPartition.size === 0) return 0;
      const extended = await run(() =>
        Promise.all([...byPartition].map(([p, argv]) => withGroup(op, p, () => scripts.calcExtend(L.stream(op, p), L.group(op), consumer, ...argv)))),
      );
      return extended.reduce((a, b) => a + b, 0);
    },

    async takeOverKey(client: string, key: string, expected: string, next: string): Promise<boolean> {
      return (await run(() => confirm(() => writes.calcTakeover(L.idempotency(client, key), expected, next)), writer)) === 1;
    },

    async retryLater(op: ServiceOp, task: ClaimedTask, delayMs: number): Promise<void> {
      const { entryId, counter, consumer } = parseReceipt(task.receipt);
      const p = L.partitionOf(task.id);
      await run(() =>
        scripts.calcRetry(L.stream(op, p), L.delayed(op, p), L.group(op), entryId, consumer, counter, String(Math.max(0, Math.round(delayMs)))),
      );
    },

    async stats(operations: readonly ServiceOp[]): Promise<Record<string, OperationStats>> {
      const replies = await run(() =>
        Promise.all(operations.map((op) => Promise.all(partitions.map((p) => scripts.calcStats(L.stream(op, p), L.dead(op, p), L.delayed(op, p), L.lastClaim(op, p), L.group(op)))))),
      );
      const at = now();
      const result: Record<string, OperationStats> = {};
      operations.forEach((op, i) => {
        // Partitions add up; the oldest task and the last claim are those of any partition.
        const sum = { depth: 0, inFlight: 0, oldestAgeMs: 0, deadLetters: 0 };
        let lastClaimAt: number | undefined;
        for (const [depth, inFlight, oldest, deadLetters, lastClaim] of replies[i]!) {
          sum.depth += depth;
          sum.inFlight += inFlight;
          sum.deadLetters += deadLetters;
          if (oldest !== '') sum.oldestAgeMs = Math.max(sum.oldestAgeMs, at - Number(oldest));
          if (lastClaim !== '') lastClaimAt = Math.max(lastClaimAt ?? 0, Number(lastClaim));
        }
        result[op] = { ...sum, ...(lastClaimAt !== undefined && { lastClaimAt }) };
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

/** The new entries of an XREADGROUP reply as claimed tasks (a first delivery each), and the ids of those that do not decode. */
function readEntries(reply: StreamReply, consumer: string): { tasks: ClaimedTask[]; undecodable: string[] } {
  const tasks: ClaimedTask[] = [];
  const undecodable: string[] = [];
  for (const [id, flat] of reply?.[0]?.[1] ?? []) {
    const f = entryFields(flat);
    const task = f.t === undefined || f.at === undefined ? undefined : decodedTask(id, f.t, f.at, Number(f.b ?? 0) + 1, Number(f.r ?? 0), 1, consumer);
    if (task) tasks.push(task);
    else undecodable.push(id);
  }
  return { tasks, undecodable };
}
