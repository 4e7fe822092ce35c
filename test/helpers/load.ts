import { http } from './gateway.js';

export interface LoadTally {
  readonly byStatus: Record<number, number>;
  readonly total: number;
  /** Ids of the 202 tickets issued. */
  readonly tickets: string[];
  /** Requests whose answer was neither the right result nor a ticket. */
  readonly wrong: string[];
}

/**
 * A steady loop of `concurrency` clients calling `/add/{i}/1` against the gateway until
 * stopped, bounded by `maxRequests`; every answer is checked.
 */
export function startLoad(base: string, options: { concurrency?: number; maxRequests?: number } = {}) {
  const { concurrency = 4, maxRequests = 50_000 } = options;
  const tally = { byStatus: {} as Record<number, number>, total: 0, tickets: [] as string[], wrong: [] as string[] };
  let stopped = false;
  let sent = 0;
  const worker = async () => {
    while (!stopped && sent < maxRequests) {
      const i = sent++;
      const reply = await http(`${base}/add/${i}/1`).catch((error: Error) => ({ status: 0, body: { error: error.message } }));
      tally.total += 1;
      tally.byStatus[reply.status] = (tally.byStatus[reply.status] ?? 0) + 1;
      if (reply.status === 202) tally.tickets.push(reply.body.id);
      else if (reply.status !== 200 || reply.body.result !== i + 1) tally.wrong.push(`${i}: ${reply.status} ${JSON.stringify(reply.body)}`);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    tally: tally as LoadTally,
    /** Resolves once at least `count` more answers have arrived (bounded by `timeoutMs`). */
    async answers(count: number, timeoutMs = 20_000) {
      const target = tally.total + count;
      const until = Date.now() + timeoutMs;
      while (tally.total < target) {
        if (Date.now() > until || stopped) throw new Error(`only ${tally.total} of ${target} answers`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop(): Promise<LoadTally> {
      stopped = true;
      await Promise.all(workers);
      return tally;
    },
  };
}
