/**
 * The Redis backend's delivery channels beyond /pending_results (#15): each client's delivery
 * log behind GET /v1/events, each client's history index behind GET /v1/results, and the webhook
 * stream that the gateways consume as one group. Each step that must not race is one Lua script.
 * Tagged (Cluster, partitions; redis-codec.ts keyLayout) the logs and webhook streams are one per
 * tag: every script touches one slot, reads go over the tags, and an event cursor is the list of
 * positions in a client's logs, one per tag.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient } from './redis-connection.js';
import { invalidArgument } from '../shared/errors.js';
import type { ServiceOp } from '../shared/operations.js';
import { decodeCursor, encodeCursor, padTime } from './history-cursor.js';
import { entryFields, ticketFromFlat, type KeyLayout } from './redis-codec.js';
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
  remember(ticket: Pick<Ticket, 'id' | 'client' | 'operation' | 'createdAt'>): Promise<void>;
};

export function redisDelivery(redis: RedisClient, run: Run, options: { resultTtlS: number; now: () => number; layout: KeyLayout }): RedisDelivery {
  const L = options.layout;
  const tags = L.tags;
  // Each tag trims its own webhook dead letters (one slot each): the cap is shared out between them.
  const deadKept = String(Math.ceil(WEBHOOK_DEAD_LETTERS_KEPT / tags.length));
  /** Where the next webhook claim starts, so that no tag starves. */
  let nextTag = 0;
  for (const [name, file, numberOfKeys] of [['calcLog', 'log', 2], ['calcHistory', 'history', 1], ['calcWebhookClaim', 'webhook-claim', 2]] as const) {
    redis.defineCommand(name, { numberOfKeys, lua: readFileSync(new URL(`./lua/${file}.lua`, import.meta.url), 'utf8') });
  }
  const scripts = redis as unknown as Scripts;
  const ttl = String(options.resultTtlS);

  /**
   * Tickets by key, in order; undefined where expired or unknown. Sent at once (one round trip
   * per node): a pipeline object would not do, Cluster refuses one spanning slots.
   */
  async function tickets(ticketKeys: readonly (string | undefined)[]): Promise<(Ticket | undefined)[]> {
    if (ticketKeys.length === 0) return [];
    const replies = await run(() => Promise.all(ticketKeys.map((key) => (key ? (redis.call('HGETALL', key) as Promise<string[]>) : Promise.resolve([])))));
    return replies.map(ticketFromFlat);
  }

  /** Tagged: one position per tag, joined by '.'; untagged: the log's entry id, as before. */
  function parseLogCursor(cursor: string): string[] {
    const positions = cursor.split('.');
    if (positions.length !== tags.length || !positions.every((p) => LOG_CURSOR.test(p))) {
      throw invalidArgument('Last-Event-ID: not an event id this gateway sent');
    }
    return positions;
  }

  function byEntryId(a: string, b: string): number {
    const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
    const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
    return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
  }

  return {
    async remember(ticket) {
      // Members are "<createdAt>:<id>" under one score: lexical order is (time, id) order.
      const stale = padTime(options.now() - options.resultTtlS * 1000);
      await run(() => scripts.calcHistory(L.history(ticket.client), L.historyMember(ticket), stale, ttl));
    },

    async logCompleted(client, limit) {
      if (limit <= 0) return 0;
      // Every tag at once, each up to the limit: more in the logs only means more to read later.
      const moved = await run(() => Promise.all(tags.map(([op, p]) =>
        scripts.calcLog(L.pending(op, p, client), L.log(op, p, client), String(limit), ttl, String(LOG_CAP)))));
      return moved.reduce((a, b) => a + b, 0);
    },

    async logCursor(client) {
      const newest = (await run(() => Promise.all(tags.map(([op, p]) => redis.xrevrange(L.log(op, p, client), '+', '-', 'COUNT', 1))))) as [string, string[]][][];
      return newest.map((entries) => entries[0]?.[0] ?? '0-0').join('.');
    },

    async readLog(client, cursor, limit): Promise<LoggedTicket[]> {
      const positions = parseLogCursor(cursor);
      const perTag = (await run(() => Promise.all(tags.map(([op, p], t) =>
        redis.xrange(L.log(op, p, client), `(${positions[t]}`, '+', 'COUNT', limit))))) as [string, string[]][][];
      // Merged in entry-id order and cut at the limit, each tag contributes a prefix of its log, so
      // the cursor after an entry (every tag's position at that point) resumes exactly behind it.
      const entries = perTag
        .flatMap((list, t) => list.map(([entryId, flat]) => ({ t, entryId, id: entryFields(flat).ticket ?? '' })))
        .sort((a, b) => byEntryId(a.entryId, b.entryId) || a.t - b.t)
        .slice(0, limit);
      const found = await tickets(entries.map(({ t, id }) => (id ? L.ticket(tags[t]![0], tags[t]![1], id) : undefined)));
      const out: LoggedTicket[] = [];
      const at = [...positions];
      entries.forEach(({ t, entryId }, i) => {
        at[t] = entryId;
        const ticket = found[i];
        // A ticket replayed from the dead letters since is queued again: its completion is logged anew.
        if (ticket?.client === client && ticket.status !== 'queued') out.push({ cursor: at.join('.'), ticket });
      });
      return out;
    },

    async listTickets(client, query: HistoryQuery): Promise<HistoryPage> {
      const key = L.history(client);
      let start = query.cursor ? `(${padTime(decodeCursor(query.cursor).createdAt)}:${decodeCursor(query.cursor).id}` : '+';
      const out: Ticket[] = [];
      for (let scanned = 0; scanned < HISTORY_SCAN_MAX; ) {
        const members = (await run(() => redis.call('ZRANGE', key, start, '-', 'BYLEX', 'REV', 'LIMIT', 0, HISTORY_BATCH))) as string[];
        if (members.length === 0) return { tickets: out };
        const positions = members.map((m) => L.parseHistoryMember(m));
        const found = await tickets(positions.map((p) => p?.ticketKey));
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
      const last = L.parseHistoryMember(start.slice(1));
      return last ? { tickets: out, nextCursor: encodeCursor(last) } : { tickets: out };
    },

    async claimWebhooks(consumer, max, claim: WebhookClaimOptions): Promise<WebhookDelivery[]> {
      if (max <= 0) return [];
      // Every tag once, from a rotating start, without blocking (the sender paces its polling);
      // deliveries already claimed are returned even when a later tag fails (they would otherwise
      // wait out their backoff).
      const start = nextTag;
      nextTag = (nextTag + 1) % tags.length;
      const out: WebhookDelivery[] = [];
      for (let i = 0; i < tags.length && out.length < max; i++) {
        const t = (start + i) % tags.length;
        const [op, p] = tags[t]!;
        let reply: string[];
        try {
          reply = await run(() =>
            scripts.calcWebhookClaim(L.webhooks(op, p), L.webhooksDead(op, p), L.webhookGroup, consumer, String(max - out.length),
              String(claim.maxAttempts), String(claim.retryMs), String(claim.attemptMs), deadKept),
          );
        } catch (error) {
          if (out.length === 0) throw error;
          break;
        }
        for (let j = 0; j + 4 < reply.length; j += 5) {
          const [entry, ticketId, client, url, attempt] = reply.slice(j, j + 5) as [string, string, string, string, string];
          // Tagged, the receipt names the tag of the stream it is acknowledged in.
          const receipt = L.tagged ? `${op}:${p}:${entry}` : entry;
          out.push({ id: `${ticketId}.${entry}`, ticketId, client, url, attempt: Number(attempt), receipt });
        }
      }
      return out;
    },

    async ackWebhook(delivery) {
      const { stream, entry } = receiptStream(delivery.receipt);
      await run(() => redis.multi().xack(stream, L.webhookGroup, entry).xdel(stream, entry).exec());
    },

    async webhookStats() {
      const lengths = await run(() => Promise.all(tags.flatMap(([op, p]) => [redis.xlen(L.webhooks(op, p)), redis.xlen(L.webhooksDead(op, p))])));
      let pending = 0;
      let deadLetters = 0;
      for (let i = 0; i < lengths.length; i += 2) {
        pending += lengths[i]!;
        deadLetters += lengths[i + 1]!;
      }
      return { pending, deadLetters };
    },
  };

  function receiptStream(receipt: string): { stream: string; entry: string } {
    if (!L.tagged) return { stream: L.webhooks('add', 0), entry: receipt };
    const [op, p, entry] = receipt.split(':') as [ServiceOp, string, string];
    return { stream: L.webhooks(op, Number(p)), entry };
  }
}
