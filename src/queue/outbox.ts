/**
 * The gateway's outbox: a DurableQueue around the Redis queue that keeps accepting while Redis
 * cannot take a write (refused, timed out, failing over, out of memory). What Redis refuses is
 * journaled in a local SQLite file (outbox-journal.ts) and a forwarder moves it to Redis, oldest
 * first, as soon as Redis takes writes again. Every forwarded write is idempotent by ticket id or
 * key (enqueue of a stored id adds nothing, a saved ticket is rewritten, SET NX GET of the same
 * holder is a no-op), so a forward cut short by a crash is simply done again.
 *
 * While the journal holds anything, new requests are journaled behind it too: that keeps the
 * order in which they reach Redis the order in which they were accepted.
 *
 * Reads look in the journal first: a journaled ticket reads back `queued`, a journaled key holds
 * its request. While Redis is away a key is taken as new only if this gateway never saw it held
 * in Redis (seen_keys); a key it saw is replayed from what is at hand, or refused (503) — never
 * computed again. A key new here may still have been used at another gateway: if that one holds
 * it in Redis when the key is forwarded, both requests stand (logged as a conflict).
 * Consumers never use the outbox.
 *
 * #15's channels go straight to Redis: the event log, the history, webhooks and dead letters
 * hold completions and past tickets, which only Redis has (a journaled ticket is not done yet).
 * While Redis is away they answer UNAVAILABLE (503; an open event stream keeps waiting), and a
 * journaled ticket joins the history once forwarded; GET /v1/results/{id} reads it meanwhile.
 */
import { CalcError, unavailable } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { toUnavailable } from './errors.js';
import { openJournal, type JournalEntry } from './outbox-journal.js';
import type { DurableQueue, NewTask, OutboxStats, Ticket } from './types.js';
import { queuedTicket } from './tickets.js';


export interface OutboxOptions {
  /** The directory of the journal file (CALC_DATA_DIR). */
  readonly dir: string;
  /** Journal rows kept at most (CALC_OUTBOX_MAX); a write beyond it is refused (503). */
  readonly max: number;
  /** How long Redis keeps an Idempotency-Key (CALC_RESULT_TTL_S): as long the outbox remembers it was held. */
  readonly keyTtlMs: number;
  readonly logger?: Logger | undefined;
  readonly now?: () => number;
}

const BATCH = 200;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;
const FORGET_EVERY_MS = 60_000;

const isUnavailable = (error: unknown) => error instanceof CalcError && error.code === 'UNAVAILABLE';

export function withOutbox(inner: DurableQueue, options: OutboxOptions): DurableQueue {
  const journal = openJournal(options.dir);
  const now = options.now ?? Date.now;
  const { max, logger } = options;
  let closed = false;
  let forwarding: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let retryMs = RETRY_MIN_MS;

  /** Runs a journal step; a failure of the local file (disk full, locked) is UNAVAILABLE like any other. */
  function local<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      throw toUnavailable(error);
    }
  }

  const full = () => unavailable(`queue unavailable: Redis cannot take the write and the gateway's outbox is full (${max} entries); nothing was accepted`);

  async function send(entry: JournalEntry): Promise<void> {
    if (entry.kind === 'task') {
      await inner.enqueue(entry.task);
    } else if (entry.kind === 'ticket') {
      await inner.saveTicket(entry.ticket);
    } else {
      const held = await inner.reserveKey(entry.client, entry.key, entry.holder);
      remember(entry.client, entry.key, held ?? entry.holder);
      if (held !== undefined) {
        logger?.warn({ client: entry.client, held }, 'outbox: an Idempotency-Key journaled here was taken by another gateway meanwhile; both requests stand');
      }
    }
  }

  /** Moves the journal to Redis, oldest first, until it is empty or Redis refuses; then tries again later. */
  async function forward(): Promise<void> {
    while (!closed) {
      const batch = local(() => journal.head(BATCH));
      if (batch.length === 0) {
        retryMs = RETRY_MIN_MS;
        return;
      }
      // Sent together on one connection, so Redis applies them in journal order.
      const sent = await Promise.allSettled(batch.map(send));
      let failure: unknown;
      local(() => sent.forEach((outcome, i) => (outcome.status === 'fulfilled' ? journal.remove(batch[i]!.seq) : (failure ??= outcome.reason))));
      if (failure !== undefined) {
        if (!isUnavailable(failure)) logger?.error({ err: failure }, 'outbox: forwarding failed');
        schedule(retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
        return;
      }
      logger?.debug({ forwarded: batch.length }, 'outbox: forwarded to Redis');
    }
  }

  function kick(): void {
    if (closed || forwarding || timer) return;
    forwarding = forward()
      .catch((error: unknown) => {
        logger?.error({ err: error }, 'outbox: forwarder stopped; retrying');
        schedule(RETRY_MAX_MS);
      })
      .finally(() => {
        forwarding = undefined;
      });
  }

  function schedule(delayMs: number): void {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      kick();
    }, delayMs);
    timer.unref();
  }

  function journalTask(task: NewTask, reason?: unknown): Ticket {
    const ticket = local(() => journal.putTask(task, queuedTicket(task, now()), max));
    if (!ticket) throw full();
    if (reason) logger?.warn({ id: task.id, err: reason instanceof Error ? reason.message : String(reason) }, 'outbox: Redis refused the write; request journaled locally');
    kick();
    return ticket;
  }

  if (!local(() => journal.isEmpty())) kick();
  const forgetting = setInterval(() => {
    try {
      journal.forgetKeys(now());
    } catch (error) {
      logger?.warn({ err: error }, 'outbox: could not forget expired keys');
    }
  }, FORGET_EVERY_MS);
  forgetting.unref();

  /** Best effort: a key not remembered only means a retry during an outage is refused or taken as new. */
  function remember(client: string, key: string, holder: string): void {
    try {
      journal.rememberKey(client, key, holder, now() + options.keyTtlMs);
    } catch (error) {
      logger?.warn({ err: error }, 'outbox: could not remember an idempotency key');
    }
  }

  return {
    backend: inner.backend,

    async enqueue(task: NewTask): Promise<Ticket> {
      if (!local(() => journal.isEmpty())) return journalTask(task);
      try {
        return await inner.enqueue(task);
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        return journalTask(task, error);
      }
    },

    async saveTicket(ticket: Ticket): Promise<void> {
      try {
        await inner.saveTicket(ticket);
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        if (!local(() => journal.putTicket(ticket, now(), max))) throw full();
        kick();
      }
    },

    async getTicket(client: string, id: string): Promise<Ticket | undefined> {
      const held = local(() => journal.ticket(id));
      if (held) return held.client === client ? held : undefined;
      return inner.getTicket(client, id);
    },

    takeCompleted: (client, limit) => inner.takeCompleted(client, limit),

    async reserveKey(client: string, key: string, id: string): Promise<string | undefined> {
      const journaled = local(() => journal.keyHolder(client, key));
      if (journaled !== undefined) return journaled === id ? undefined : journaled;
      let held: string | undefined;
      try {
        held = await inner.reserveKey(client, key, id);
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        const seen = local(() => journal.seenKey(client, key, now()));
        if (seen !== undefined) return seen === id ? undefined : seen;
        const holder = local(() => journal.putKey(client, key, id, now(), max));
        if (holder === undefined) throw full();
        kick();
        return holder === id ? undefined : holder;
      }
      remember(client, key, held ?? id);
      return held;
    },

    async takeOverKey(client: string, key: string, expected: string, next: string): Promise<boolean> {
      const journaled = local(() => journal.takeOverKey(client, key, expected, next));
      if (journaled !== undefined) return journaled;
      const took = await inner.takeOverKey(client, key, expected, next);
      if (took) remember(client, key, next);
      return took;
    },

    claim: (op, consumer, count, claimOptions) => inner.claim(op, consumer, count, claimOptions),
    extend: (op, consumer, tasks, leaseMs) => inner.extend(op, consumer, tasks, leaseMs),
    complete: (op, completions) => inner.complete(op, completions),
    retryLater: (op, task, delayMs) => inner.retryLater(op, task, delayMs),
    stats: (operations) => inner.stats(operations),
    ping: () => inner.ping(),

    logCompleted: (client, limit) => inner.logCompleted(client, limit),
    logCursor: (client) => inner.logCursor(client),
    readLog: (client, cursor, limit) => inner.readLog(client, cursor, limit),
    listTickets: (client, query) => inner.listTickets(client, query),
    deadLetters: (operations, limit) => inner.deadLetters(operations, limit),
    replayDeadLetter: (id) => inner.replayDeadLetter(id),
    purgeDeadLetter: (id) => inner.purgeDeadLetter(id),
    claimWebhooks: (consumer, max, claimOptions) => inner.claimWebhooks(consumer, max, claimOptions),
    ackWebhook: (delivery) => inner.ackWebhook(delivery),
    webhookStats: () => inner.webhookStats(),

    behindOutbox: () => inner,

    outbox(): OutboxStats {
      const { depth, oldestAt } = local(() => journal.stats());
      return { depth, max, oldestAgeMs: oldestAt === undefined ? 0 : Math.max(0, now() - oldestAt) };
    },

    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      clearInterval(forgetting);
      await forwarding;
      journal.close();
      await inner.close();
    },
  };
}

