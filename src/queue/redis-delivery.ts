/**
 * The Redis backend's delivery channels beyond /pending_results (#15): each client's delivery
 * log behind GET /v1/events, each client's history index behind GET /v1/results, and the webhook
 * stream that the gateways consume as one group. Each step that must not race is one Lua script.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { invalidArgument } from '../shared/errors.js';
import { decodeCursor, encodeCursor, padTime } from './history-cursor.js';
import { entryFields, keys, ticketFromFlat } from './redis-codec.js';
import type { DurableQueue, HistoryPage, HistoryQuery, LoggedTicket, Ticket, WebhookClaimOptions, WebhookDelivery } from './types.js';

type Run = <T>(command: () => Promise<T>) => Promise<T>;

interface Scripts {
  calcLog(pending: string, log: string, limit: string, ttlS: string, cap: string): Promise<number>;
  calcHistory(history: string, member: string, stale: string, ttlS: string): Promise<number>;
  calcWebhookClaim(stream: string, dead: string, ...argv: string[]): Promise<string[]>;
}

/** Log entries kept per client at most, besides the TTL. */
const LOG_CAP = 10_000;
/** Tickets the history reads per round trip, and at most per page (a filter may skip many). */
const HISTORY_BATCH = 200;
const HISTORY_SCAN_MAX = 2000;
const WEBHOOK_DEAD_LETTERS_KEPT = 100_000;
const LOG_CURSOR = /^\d{1,20}-\d{1,20}$/;

export type RedisDelivery = Pick<DurableQueue, 'logCompleted' | 'logCursor' | 'readLog' | 'listTickets' | 'claimWebhooks' | 'ackWebhook' | 'webhookStats'> & {
  /** Adds a ticket to its client's history (an index: an id whose ticket is gone or foreign is skipped when listed). */
  remember(ticket: Pick<Ticket, 'id' | 'client' | 'createdAt'>): Promise<void>;
};

export function redisDelivery(redis: Redis, run: Run, options: { resultTtlS: number; now: () => number }): RedisDelivery {
  for (const [name, file, numberOfKeys] of [['calcLog', 'log', 2], ['calcHistory', 'history', 1], ['calcWebhookClaim', 'webhook-claim', 2]] as const) {
    redis.defineCommand(name, { numberOfKeys, lua: readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8') });
  }
  const scripts = redis as unknown as Scripts;
  const ttl = String(options.resultTtlS);

  /** Tickets by id in one round trip, in order; undefined where expired. */
  async function tickets(ids: readonly string[]): Promise<(Ticket | undefined)[]> {
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hgetall(keys.ticket(id));
    const replies = (await run(() => pipeline.exec())) ?? [];
    return replies.map(([error, hash]) => {
      if (error) throw error;
      return ticketFromFlat(Object.entries(hash as Record<string, string>).flat());
    });
  }

  return {
    async remember(ticket) {
      // Members are "<createdAt>:<id>" under one score: lexical order is (time, id) order.
      const stale = padTime(options.now() - options.resultTtlS * 1000);
      await run(() => scripts.calcHistory(keys.history(ticket.client), `${padTime(ticket.createdAt)}:${ticket.id}`, stale, ttl));
    },

    async logCompleted(client, limit) {
      if (limit <= 0) return 0;
      return run(() => scripts.calcLog(keys.pending(client), keys.log(client), String(limit), ttl, String(LOG_CAP)));
    },

    async logCursor(client) {
      const newest = (await run(() => redis.xrevrange(keys.log(client), '+', '-', 'COUNT', 1))) as [string, string[]][];
      return newest[0]?.[0] ?? '0-0';
    },

    async readLog(client, cursor, limit): Promise<LoggedTicket[]> {
      if (!LOG_CURSOR.test(cursor)) throw invalidArgument('Last-Event-ID: not an event id this gateway sent');
      const entries = (await run(() => redis.xrange(keys.log(client), `(${cursor}`, '+', 'COUNT', limit))) as [string, string[]][];
      const found = await tickets(entries.map(([, flat]) => entryFields(flat).ticket ?? ''));
      const out: LoggedTicket[] = [];
      entries.forEach(([entryId], i) => {
        const ticket = found[i];
        // A ticket replayed from the dead letters since is queued again: its completion is logged anew.
        if (ticket?.client === client && ticket.status !== 'queued') out.push({ cursor: entryId, ticket });
      });
      return out;
    },

    async listTickets(client, query: HistoryQuery): Promise<HistoryPage> {
      const key = keys.history(client);
      let start = query.cursor ? `(${padTime(decodeCursor(query.cursor).createdAt)}:${decodeCursor(query.cursor).id}` : '+';
      const out: Ticket[] = [];
      for (let scanned = 0; scanned < HISTORY_SCAN_MAX; ) {
        const members = (await run(() => redis.call('ZRANGE', key, start, '-', 'BYLEX', 'REV', 'LIMIT', 0, HISTORY_BATCH))) as string[];
        if (members.length === 0) return { tickets: out };
        const positions = members.map((m) => ({ createdAt: Number(m.slice(0, 13)), id: m.slice(14) }));
        const found = await tickets(positions.map((p) => p.id));
        for (let i = 0; i < members.length; i++) {
          scanned += 1;
          const ticket = found[i];
          // A retried enqueue adds a second member for one ticket: only the one with its createdAt counts.
          if (!ticket || ticket.client !== client || ticket.createdAt !== positions[i]!.createdAt) continue;
          if (query.status && ticket.status !== query.status) continue;
          if (query.operation && ticket.operation !== query.operation) continue;
          out.push(ticket);
          if (out.length >= query.limit) return { tickets: out, nextCursor: encodeCursor(positions[i]!) };
        }
        start = `(${members[members.length - 1]}`;
        if (members.length < HISTORY_BATCH) return { tickets: out };
      }
      // Many skipped by the filter: a short page, and the next one starts where this scan stopped.
      const last = start.slice(1);
      return { tickets: out, nextCursor: encodeCursor({ createdAt: Number(last.slice(0, 13)), id: last.slice(14) }) };
    },

    async claimWebhooks(consumer, max, claim: WebhookClaimOptions): Promise<WebhookDelivery[]> {
      if (max <= 0) return [];
      const reply = await run(() =>
        scripts.calcWebhookClaim(keys.webhooks, keys.webhooksDead, keys.webhookGroup, consumer, String(max),
          String(claim.maxAttempts), String(claim.retryMs), String(claim.attemptMs), String(WEBHOOK_DEAD_LETTERS_KEPT)),
      );
      const out: WebhookDelivery[] = [];
      for (let i = 0; i + 4 < reply.length; i += 5) {
        const [entry, ticketId, client, url, attempt] = reply.slice(i, i + 5) as [string, string, string, string, string];
        out.push({ id: `${ticketId}.${entry}`, ticketId, client, url, attempt: Number(attempt), receipt: entry });
      }
      return out;
    },

    async ackWebhook(delivery) {
      await run(() => redis.multi().xack(keys.webhooks, keys.webhookGroup, delivery.receipt).xdel(keys.webhooks, delivery.receipt).exec());
    },

    async webhookStats() {
      const [pending, dead] = await run(() => Promise.all([redis.xlen(keys.webhooks), redis.xlen(keys.webhooksDead)]));
      return { pending, deadLetters: dead };
    },
  };
}
