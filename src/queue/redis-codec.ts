/**
 * Key layout of the Redis queue and the mapping between its hashes/entries and the queue types.
 * Numbers are stored with String(n), which round-trips every finite double exactly.
 */
import { isErrorCode } from '../shared/errors.js';
import { SERVICE_OPS, isServiceOp, type ServiceOp } from '../shared/operations.js';
import { padTime } from './history-cursor.js';
import type { ClaimedTask, NewTask, Ticket, TicketStatus } from './types.js';

const PREFIX = 'calcmesh:';

/**
 * The layout of one Redis: where an operation's queue (partition `p`) and its tickets live.
 * Untagged (one Redis, Sentinel, one partition): the names above, as they always were, so an
 * upgrade finds what an older version stored. Tagged (Redis Cluster, or CALC_QUEUE_PARTITIONS >
 * 1): every key a script touches shares the hash tag `{calcmesh:<op>:<p>}`, so each script runs on
 * one slot. A ticket lives in the tag of its operation and of the partition its id hashes to, so
 * it is found by id among the five operations' tags; a client's completed tickets are listed per
 * tag, and an Idempotency-Key is one key of its own (any slot).
 *
 * #15's keys follow: a client's delivery log sits beside its pending list (log.lua moves ids
 * from one to the other), so tagged there is one log per client per tag and an event cursor is
 * the list of positions in all of them; the webhook streams are per tag too (complete.lua and
 * claim.lua add to them); a client's history index is one sorted set of its own (history.lua
 * touches only it), whose members name the ticket's operation when tagged, so that the ticket is
 * found without trying every tag.
 */
export interface KeyLayout {
  readonly tagged: boolean;
  readonly partitions: number;
  partitionOf(id: string): number;
  stream(op: ServiceOp, p: number): string;
  dead(op: ServiceOp, p: number): string;
  delayed(op: ServiceOp, p: number): string;
  lastClaim(op: ServiceOp, p: number): string;
  group(op: ServiceOp): string;
  ticketPrefix(op: ServiceOp, p: number): string;
  ticket(op: ServiceOp, p: number, id: string): string;
  pendingPrefix(op: ServiceOp, p: number): string;
  pending(op: ServiceOp, p: number, client: string): string;
  idempotency(client: string, key: string): string;
  /** Every tag, as (operation, partition); untagged, one entry whose operation is irrelevant. */
  readonly tags: readonly (readonly [ServiceOp, number])[];
  log(op: ServiceOp, p: number, client: string): string;
  webhooks(op: ServiceOp, p: number): string;
  webhooksDead(op: ServiceOp, p: number): string;
  readonly webhookGroup: string;
  history(client: string): string;
  /** The history member of a ticket: "<13-digit createdAt>:<id>", tagged followed by "/<op>". */
  historyMember(ticket: Pick<Ticket, 'id' | 'operation' | 'createdAt'>): string;
  /** A member read back: where its ticket is; undefined for a member this layout never wrote. */
  parseHistoryMember(member: string): { createdAt: number; id: string; ticketKey: string } | undefined;
}

export function keyLayout(tagged: boolean, partitions: number): KeyLayout {
  if (!tagged) {
    return {
      tagged, partitions: 1, partitionOf: () => 0,
      stream: (op) => keys.stream(op), dead: (op) => keys.dead(op), delayed: (op) => keys.delayed(op),
      lastClaim: (op) => keys.lastClaim(op), group: keys.group,
      ticketPrefix: () => keys.ticketPrefix, ticket: (_op, _p, id) => keys.ticket(id),
      pendingPrefix: () => keys.pendingPrefix, pending: (_op, _p, client) => keys.pending(client),
      idempotency: keys.idempotency,
      tags: [['add', 0]],
      log: (_op, _p, client) => keys.log(client),
      webhooks: () => keys.webhooks,
      webhooksDead: () => keys.webhooksDead,
      webhookGroup: keys.webhookGroup,
      history: keys.history,
      historyMember: (ticket) => `${padTime(ticket.createdAt)}:${ticket.id}`,
      parseHistoryMember(member) {
        const createdAt = Number(member.slice(0, 13));
        const id = member.slice(14);
        return member[13] === ':' && id !== '' && Number.isInteger(createdAt) ? { createdAt, id, ticketKey: keys.ticket(id) } : undefined;
      },
    };
  }
  const tag = (op: ServiceOp, p: number) => `${PREFIX}{${op}:${p}}:`;
  return {
    tagged, partitions,
    partitionOf: (id) => fnv1a(id) % partitions,
    stream: (op, p) => `${tag(op, p)}stream`,
    dead: (op, p) => `${tag(op, p)}dead`,
    delayed: (op, p) => `${tag(op, p)}delayed`,
    lastClaim: (op, p) => `${tag(op, p)}lastclaim`,
    group: keys.group,
    ticketPrefix: (op, p) => `${tag(op, p)}ticket:`,
    ticket: (op, p, id) => `${tag(op, p)}ticket:${id}`,
    pendingPrefix: (op, p) => `${tag(op, p)}pending:`,
    pending: (op, p, client) => `${tag(op, p)}pending:${client}`,
    idempotency: keys.idempotency,
    tags: SERVICE_OPS.flatMap((op) => Array.from({ length: partitions }, (_, p) => [op, p] as const)),
    log: (op, p, client) => `${tag(op, p)}log:${client}`,
    webhooks: (op, p) => `${tag(op, p)}webhooks`,
    webhooksDead: (op, p) => `${tag(op, p)}webhooks-dead`,
    webhookGroup: keys.webhookGroup,
    history: keys.history,
    historyMember: (ticket) => `${padTime(ticket.createdAt)}:${ticket.id}/${ticket.operation}`,
    parseHistoryMember(member) {
      const createdAt = Number(member.slice(0, 13));
      const slash = member.lastIndexOf('/');
      const id = member.slice(14, slash);
      const op = member.slice(slash + 1);
      if (member[13] !== ':' || slash < 15 || !Number.isInteger(createdAt) || !isServiceOp(op)) return undefined;
      return { createdAt, id, ticketKey: `${tag(op, fnv1a(id) % partitions)}ticket:${id}` };
    },
  };
}

/** 32-bit FNV-1a: the same partition for an id in every process, cheap, well spread. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The untagged names (one Redis or Sentinel, one partition). */
export const keys = {
  stream: (op: ServiceOp) => `${PREFIX}stream:${op}`,
  dead: (op: ServiceOp) => `${PREFIX}dead:${op}`,
  delayed: (op: ServiceOp) => `${PREFIX}delayed:${op}`,
  lastClaim: (op: ServiceOp) => `${PREFIX}lastclaim:${op}`,
  group: (op: ServiceOp) => `${PREFIX}${op}`,
  ticketPrefix: `${PREFIX}ticket:`,
  ticket: (id: string) => `${PREFIX}ticket:${id}`,
  pendingPrefix: `${PREFIX}pending:`,
  pending: (client: string) => `${PREFIX}pending:${client}`,
  idempotency: (client: string, key: string) => `${PREFIX}idem:${client.length}:${client}:${key}`,
  // #15 (tagged, keyLayout gives each of these per tag, beside the pending lists and streams).
  log: (client: string) => `${PREFIX}log:${client}`,
  history: (client: string) => `${PREFIX}history:${client}`,
  webhooks: `${PREFIX}{webhooks}:stream`,
  webhooksDead: `${PREFIX}{webhooks}:dead`,
  webhookGroup: `${PREFIX}webhooks`,
};

/** The hash of a ticket as field, value pairs (absent members are left out). */
export function ticketFields(ticket: Ticket): string[] {
  const fields: string[] = [
    'id', ticket.id,
    'client', ticket.client,
    'status', ticket.status,
    'operation', ticket.operation,
    'createdAt', String(ticket.createdAt),
  ];
  const optional: [string, string | number | undefined][] = [
    ['num1', ticket.num1],
    ['num2', ticket.num2],
    ['expression', ticket.expression],
    ['result', ticket.result],
    ['errorCode', ticket.error?.code],
    ['errorMessage', ticket.error?.message],
    ['completedAt', ticket.completedAt],
    ['callback', ticket.callback],
  ];
  for (const [name, value] of optional) if (value !== undefined) fields.push(name, String(value));
  return fields;
}

/** A ticket from its HGETALL reply (a flat list, RESP2), or undefined when empty or foreign. */
export function ticketFromFlat(flat: readonly string[]): Ticket | undefined {
  if (flat.length === 0) return undefined;
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return ticketFromHash(h);
}

export function ticketFromHash(h: Readonly<Record<string, string>>): Ticket | undefined {
  const { id, client, status, operation, createdAt } = h;
  if (!id || client === undefined || !isStatus(status) || !operation || !isServiceOp(operation) || !createdAt) {
    return undefined;
  }
  const code = h.errorCode;
  return {
    id,
    client,
    status,
    operation,
    ...(h.num1 !== undefined && { num1: Number(h.num1) }),
    ...(h.num2 !== undefined && { num2: Number(h.num2) }),
    ...(h.expression !== undefined && { expression: h.expression }),
    ...(h.result !== undefined && { result: Number(h.result) }),
    ...(code !== undefined && { error: { code: isErrorCode(code) ? code : 'INTERNAL', message: h.errorMessage ?? '' } }),
    createdAt: Number(createdAt),
    ...(h.completedAt !== undefined && { completedAt: Number(h.completedAt) }),
    ...(h.callback !== undefined && { callback: h.callback }),
  };
}

const isStatus = (value: string | undefined): value is TicketStatus =>
  value === 'queued' || value === 'done' || value === 'failed';

/** What a stream entry carries: the whole task, so that a claim needs no second read. */
export function taskJson(task: NewTask): string {
  const { id, client, requestId, operation, num1, num2, expression, callback, traceparent, tracestate } = task;
  return JSON.stringify({ id, client, requestId, operation, num1, num2, expression, callback, traceparent, tracestate });
}

/**
 * A claimed task from its entry, or undefined when the task JSON is not an object with a string
 * id or the enqueue time is not a number (a foreign writer, a corrupted restore): the claim then
 * dead-letters it.
 */
export function decodedTask(
  entryId: string,
  json: string,
  enqueuedAt: string,
  deliveries: number,
  retries: number,
  counter: number,
  consumer: string,
): ClaimedTask | undefined {
  let task: ClaimedTask;
  try {
    task = claimedTask(entryId, json, enqueuedAt, deliveries, retries, counter, consumer);
  } catch {
    return undefined;
  }
  return task !== null && typeof task === 'object' && typeof task.id === 'string' && Number.isFinite(task.enqueuedAt) ? task : undefined;
}

/**
 * The receipt names the entry, the group's delivery counter and the consumer: retryLater acts
 * only while that exact delivery is still this consumer's.
 */
export function claimedTask(
  entryId: string,
  json: string,
  enqueuedAt: string,
  deliveries: number,
  retries: number,
  counter: number,
  consumer: string,
): ClaimedTask {
  // The parsed object becomes the claimed task (no copy: a drain claims tens of thousands a second).
  const task = JSON.parse(json) as NewTask & { -readonly [K in 'enqueuedAt' | 'deliveries' | 'retries' | 'receipt']?: ClaimedTask[K] };
  task.enqueuedAt = Number(enqueuedAt);
  task.deliveries = deliveries;
  task.retries = retries;
  task.receipt = `${entryId}|${counter}|${consumer}`;
  return task as ClaimedTask;
}

export function parseReceipt(receipt: string): { entryId: string; counter: string; consumer: string } {
  const first = receipt.indexOf('|');
  const second = receipt.indexOf('|', first + 1);
  return {
    entryId: receipt.slice(0, first),
    counter: receipt.slice(first + 1, second),
    consumer: receipt.slice(second + 1),
  };
}

/** Fields of a stream entry from its flat list. */
export function entryFields(flat: readonly string[]): Record<string, string> {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return f;
}
