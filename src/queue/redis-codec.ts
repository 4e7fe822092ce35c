/**
 * Key layout of the Redis queue and the mapping between its hashes/entries and the queue types.
 * Numbers are stored with String(n), which round-trips every finite double exactly.
 */
import { isErrorCode } from '../shared/errors.js';
import { isServiceOp, type ServiceOp } from '../shared/operations.js';
import type { ClaimedTask, NewTask, Ticket, TicketStatus } from './types.js';

const PREFIX = 'calcmesh:';

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
  // #15. A Cluster layout must give a client's log the same hash tag as its pending list (log.lua
  // takes both); the two webhook streams share the tag {webhooks} (webhook-claim.lua takes both).
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
  const task = JSON.parse(json) as NewTask;
  return { ...task, enqueuedAt: Number(enqueuedAt), deliveries, retries, receipt: `${entryId}|${counter}|${consumer}` };
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
