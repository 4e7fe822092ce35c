/**
 * Reads that must stay reads: for the whole chaos window, each client's HEAD and OPTIONS of
 * /pending_results and HEAD of its own tickets, as a proxy, a monitor or a link checker would
 * send them. The ledger's "each result delivered once by /pending_results" then also proves
 * that none of these took a delivery away.
 */
import { authHeaders, exchange, sleep } from './client.js';
import type { Ledger } from './ledger.js';

export interface ReadPollerOptions {
  readonly url: string;
  readonly clients: readonly { name: string; apiKey: string }[];
  readonly ledger: Ledger;
  readonly until: number;
  readonly everyMs?: number;
}

/** Resolves with the number of read-only requests sent, once the window closes. */
export async function pollReads(o: ReadPollerOptions): Promise<number> {
  let sent = 0;
  await Promise.all(o.clients.map(async (client) => {
    const headers = authHeaders(client.apiKey);
    while (Date.now() < o.until) {
      const own = o.ledger.tickets().filter((t) => t.client === client.name);
      const ticket = own[own.length - 1];
      await Promise.all([
        exchange(`${o.url}/pending_results`, { method: 'HEAD', headers }),
        exchange(`${o.url}/pending_results`, { method: 'OPTIONS', headers }),
        ...(ticket ? [exchange(`${o.url}/v1/results/${ticket.id}`, { method: 'HEAD', headers })] : []),
      ]);
      sent += ticket ? 3 : 2;
      await sleep(o.everyMs ?? 100);
    }
  }));
  return sent;
}
