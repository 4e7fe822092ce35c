/**
 * Dead letters for operators on the Redis backend (#15): listed from each operation's dead-letter
 * stream, replayed back into its stream under the same ticket id, or purged. Tagged (Cluster,
 * partitions), a dead letter lives in the partition its id hashes to, beside its stream.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient } from './redis-connection.js';
import type { ServiceOp } from '../shared/operations.js';
import { entryFields, ticketFields, type KeyLayout } from './redis-codec.js';
import type { DeadLetter, DurableQueue, NewTask, Ticket } from './types.js';

type Run = <T>(command: () => Promise<T>) => Promise<T>;

interface Scripts {
  calcDeadLetter(dead: string, stream: string, action: 'find' | 'replay' | 'purge', id: string): Promise<unknown>;
}

export type RedisDeadLetters = Pick<DurableQueue, 'deadLetters' | 'replayDeadLetter' | 'purgeDeadLetter'>;

export function redisDeadLetters(redis: RedisClient, run: Run, operations: readonly ServiceOp[], L: KeyLayout): RedisDeadLetters {
  redis.defineCommand('calcDeadLetter', { numberOfKeys: 2, lua: readFileSync(new URL('./lua/dead-letter.lua', import.meta.url), 'utf8') });
  const scripts = redis as unknown as Scripts;
  const act = (op: ServiceOp, action: 'find' | 'replay' | 'purge', id: string) => {
    const p = L.partitionOf(id);
    return run(() => scripts.calcDeadLetter(L.dead(op, p), L.stream(op, p), action, id));
  };
  const partitions = Array.from({ length: L.partitions }, (_, p) => p);

  async function find(id: string): Promise<{ op: ServiceOp; letter: DeadLetter } | undefined> {
    for (const op of operations) {
      const found = (await act(op, 'find', id)) as [string, string[]] | [];
      if (found.length === 2) return { op, letter: fromEntry(op, found[0], found[1]) };
    }
    return undefined;
  }

  return {
    async deadLetters(ops, limit) {
      const lists = ops.flatMap((op) => partitions.map((p) => [op, p] as const));
      const all = await run(() => Promise.all(lists.map(([op, p]) => redis.xrevrange(L.dead(op, p), '+', '-', 'COUNT', limit))));
      return all
        .flatMap((entries, i) => (entries as [string, string[]][]).map(([entryId, flat]) => fromEntry(lists[i]![0], entryId, flat)))
        .sort((a, b) => b.deadAt - a.deadAt)
        .slice(0, limit);
    },

    async replayDeadLetter(id) {
      const found = await find(id);
      if (!found) return false;
      const { op, letter } = found;
      // The ticket is queued again *before* its task is back in the stream, so that a consumer
      // completing it at once finds it queued; and it leaves its client's pending results.
      const ticket: Ticket = {
        id, client: letter.client, status: 'queued', operation: op, createdAt: letter.enqueuedAt,
        ...(letter.task.num1 !== undefined && { num1: letter.task.num1 }),
        ...(letter.task.num2 !== undefined && { num2: letter.task.num2 }),
        ...(letter.task.expression !== undefined && { expression: letter.task.expression }),
        ...(letter.task.callback !== undefined && { callback: letter.task.callback }),
      };
      const p = L.partitionOf(id);
      const key = L.ticket(op, p, id);
      await run(() => redis.lrem(L.pending(op, p, letter.client), 0, id));
      await run(() => redis.multi().del(key).hset(key, ...ticketFields(ticket)).exec());
      return (await act(op, 'replay', id)) === 1;
    },

    async purgeDeadLetter(id) {
      for (const op of operations) if ((await act(op, 'purge', id)) === 1) return true;
      return false;
    },
  };
}

function fromEntry(op: ServiceOp, entryId: string, flat: string[]): DeadLetter {
  const f = entryFields(flat);
  const task = JSON.parse(f.t ?? '{}') as NewTask;
  return {
    id: f.id ?? task.id,
    operation: op,
    client: task.client,
    deliveries: Number(f.deliveries ?? 0),
    reason: f.reason ?? '',
    // A stream entry id starts with the Redis server's ms time of the XADD.
    deadAt: Number(entryId.split('-', 1)[0]),
    enqueuedAt: Number(f.at ?? 0),
    task,
  };
}
