/** `calcmesh dlq list|replay <id>|purge <id>`: the operator's dead-letter routes (an operator key, CALC_ADMIN_KEYS). */
import { EXIT, request, table, type ClientOptions } from './client.js';

type Out = (line: string) => void;

export async function dlqCommand(options: ClientOptions, out: Out, action: string, id: string | undefined, operation?: string): Promise<number> {
  if (action !== 'list' && !id) {
    out(`error: calcmesh dlq ${action} needs a dead letter's id`);
    return EXIT.error;
  }
  const reply =
    action === 'list' ? await request(options, `/v1/admin/dead-letters${operation ? `?operation=${encodeURIComponent(operation)}` : ''}`)
      : action === 'replay' ? await request(options, `/v1/admin/dead-letters/${encodeURIComponent(id!)}/replay`, { method: 'POST' })
        : action === 'purge' ? await request(options, `/v1/admin/dead-letters/${encodeURIComponent(id!)}`, { method: 'DELETE' })
          : undefined;
  if (!reply) {
    out(`error: unknown dlq action ${JSON.stringify(action)}; expected list, replay or purge`);
    return EXIT.error;
  }
  if (reply.status >= 400) {
    out(options.json ? JSON.stringify(reply.body) : `error ${reply.status} ${reply.body.error?.code ?? ''}: ${reply.body.error?.message ?? ''}`);
    return EXIT.error;
  }
  if (options.json) out(JSON.stringify(reply.body));
  else if (action === 'list') {
    const letters = reply.body.deadLetters as Record<string, any>[];
    out(letters.length === 0 ? 'no dead letters' : table(['ticket', 'operation', 'client', 'deliveries', 'dead at', 'reason'],
      letters.map((l) => [l.id, l.operation, l.client, String(l.deliveries), l.deadAt, l.reason])));
  } else out(action === 'replay' ? `replayed ${id}: queued again under the same ticket` : `purged ${id}`);
  return EXIT.done;
}
