/**
 * The accounting of a chaos run: every request, every attempt and answer, every ticket read and
 * every delivery of /pending_results, and the invariants they must satisfy together. Pure: it
 * is fed observations and judges them, so that a unit test can hand it any story.
 *
 * The four headline counts, each a sum of violation kinds:
 *  - lost:         a request never got a definitive answer; a 202 ticket is unreadable, not done
 *                  in the end, or never delivered by /pending_results.
 *  - doubled:      one request (one Idempotency-Key) answered under two ids; one id seen with two
 *                  different outcomes; one result delivered twice; a ticket the client was never
 *                  told about that repeats one of its requests (the request was stored twice).
 *  - wrong:        a 200 or a done ticket with a result other than the reference; a 4xx for valid
 *                  input or the wrong 4xx for invalid input; invalid input answered 200 or queued;
 *                  a failed ticket for valid input; a ticket that names other operands; any 5xx
 *                  but 503 (503 is the contract's "nothing accepted, retry").
 *  - misdelivered: another client's ticket delivered to or readable by this client; a delivery
 *                  that matches no request of this client at all.
 */
import type { RequestSpec } from './workload.js';

export type Category = 'lost' | 'doubled' | 'wrong' | 'misdelivered';

export const KIND_CATEGORY = {
  'unanswered': 'lost',
  'lost-ticket': 'lost',
  'not-done': 'lost',
  'undelivered': 'lost',
  'id-changed': 'doubled',
  'id-shared': 'doubled',
  'result-changed': 'doubled',
  'delivered-twice': 'doubled',
  'stray-ticket': 'doubled',
  'wrong-result': 'wrong',
  'wrong-error': 'wrong',
  'valid-rejected': 'wrong',
  'invalid-accepted': 'wrong',
  'failed-ticket': 'wrong',
  'ticket-mismatch': 'wrong',
  'server-error': 'wrong',
  'foreign-delivery': 'misdelivered',
  'foreign-read': 'misdelivered',
  'unknown-delivery': 'misdelivered',
} as const satisfies Record<string, Category>;

export type ViolationKind = keyof typeof KIND_CATEGORY;

export interface Violation {
  readonly kind: ViolationKind;
  readonly category: Category;
  readonly detail: string;
  readonly client?: string;
  readonly id?: string;
  /** The request concerned: its label, key and the statuses of all its attempts. */
  readonly request?: string;
  readonly key?: string;
}

/** An HTTP answer; status 0 means none arrived (connection refused or reset, timeout). */
export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly error?: string;
}

/** How a request was sent: the first time, a deliberate repeat after its answer, or a concurrent twin. */
export type SendKind = 'first' | 'replay' | 'twin';

export const isDefinitive = (status: number) => status === 200 || status === 202 || (status >= 400 && status < 500);

export interface LedgerCounts {
  requests: number;
  /** Requests sent again deliberately with the same key (after the answer, or concurrently). */
  replays: number;
  attempts: number;
  /** Attempts made because the previous one got no definitive answer. */
  retries: number;
  /** First definitive answer of each request's first send. */
  ok200: number;
  queued202: number;
  rejected4xx: number;
  /** By status, every definitive and non-definitive reply (0: no answer). */
  byStatus: Record<string, number>;
  tickets: number;
  delivered: number;
  /** 200 ids with no ticket to read (answered directly while the queue was unreachable). */
  unrecorded200: number;
  /** Slow requests (label "(slow)"), and of those the ones that were queued. */
  slow: number;
  slowQueued: number;
  lost: number;
  doubled: number;
  wrong: number;
  misdelivered: number;
}

export interface LedgerResult {
  readonly counts: LedgerCounts;
  readonly violations: Violation[];
}

interface Send {
  readonly kind: SendKind;
  readonly replies: Reply[];
}

interface Entry {
  readonly spec: RequestSpec;
  readonly sends: Send[];
}

interface TicketView {
  readonly id?: unknown;
  readonly status?: unknown;
  readonly result?: unknown;
  readonly error?: { code?: unknown };
  readonly operation?: unknown;
  readonly num1?: unknown;
  readonly num2?: unknown;
  readonly expression?: unknown;
}

export class Ledger {
  private readonly entries = new Map<number, Entry>();
  private readonly reads = new Map<string, { client: string; reply: Reply }[]>();
  private readonly foreign: { reader: string; id: string; reply: Reply }[] = [];
  private readonly deliveries: { client: string; ticket: TicketView }[] = [];

  issue(spec: RequestSpec): void {
    if (this.entries.has(spec.seq)) throw new Error(`request ${spec.seq} issued twice`);
    this.entries.set(spec.seq, { spec, sends: [] });
  }

  /** Starts a send of request `seq`; returns its index for `attempt`. */
  send(seq: number, kind: SendKind): number {
    const entry = this.entry(seq);
    entry.sends.push({ kind, replies: [] });
    return entry.sends.length - 1;
  }

  attempt(seq: number, send: number, reply: Reply): void {
    const target = this.entry(seq).sends[send];
    if (!target) throw new Error(`request ${seq} has no send ${send}`);
    target.replies.push(reply);
  }

  /** The owner read ticket `id` at /v1/results/{id}. */
  read(client: string, id: string, reply: Reply): void {
    const list = this.reads.get(id) ?? [];
    list.push({ client, reply });
    this.reads.set(id, list);
  }

  /** A client that does not own `id` tried to read it. */
  foreignRead(reader: string, id: string, reply: Reply): void {
    this.foreign.push({ reader, id, reply });
  }

  /** One ticket of a /pending_results answer to `client`. */
  deliver(client: string, ticket: unknown): void {
    this.deliveries.push({ client, ticket: (ticket ?? {}) as TicketView });
  }

  /** Every request issued, in order. */
  specs(): RequestSpec[] {
    return [...this.entries.values()].map((e) => e.spec);
  }

  /** Ids issued so far, with their owner and whether any answer queued them. */
  tickets(): { id: string; client: string; queued: boolean; seq: number }[] {
    return [...this.ticketIndex().values()].map(({ id, client, queued, seq }) => ({ id, client, queued, seq }));
  }

  verify(): LedgerResult {
    const violations: Violation[] = [];
    const counts: LedgerCounts = {
      requests: this.entries.size, replays: 0, attempts: 0, retries: 0, ok200: 0, queued202: 0, rejected4xx: 0,
      byStatus: {}, tickets: 0, delivered: this.deliveries.length, unrecorded200: 0, slow: 0, slowQueued: 0, lost: 0, doubled: 0, wrong: 0, misdelivered: 0,
    };
    const flag = (kind: ViolationKind, detail: string, about: { entry?: Entry; id?: string; client?: string } = {}) => {
      const client = about.client ?? about.entry?.spec.client;
      violations.push({
        kind,
        category: KIND_CATEGORY[kind],
        detail,
        ...(client !== undefined ? { client } : {}),
        ...(about.id !== undefined ? { id: about.id } : {}),
        ...(about.entry ? { request: story(about.entry), key: about.entry.spec.key } : {}),
      });
    };

    for (const entry of this.entries.values()) this.judgeAnswers(entry, counts, flag);

    const index = this.ticketIndex();
    counts.tickets = [...index.values()].filter((t) => t.queued).length;
    const isSlow = (entry: Entry | undefined) => entry?.spec.label.endsWith('(slow)') === true;
    counts.slow = [...this.entries.values()].filter(isSlow).length;
    counts.slowQueued = [...index.values()].filter((t) => t.queued && isSlow(this.entry(t.seq))).length;
    for (const ticket of index.values()) {
      if (ticket.seqs.size > 1) flag('id-shared', `id given to ${ticket.seqs.size} different requests: ${[...ticket.seqs].join(', ')}`, { id: ticket.id, entry: this.entry(ticket.seq) });
    }

    // Every observation of one id must tell the same outcome: both reads and the delivery.
    const outcomes = new Map<string, { outcome: string; where: string }>();
    const sameOutcome = (id: string, view: TicketView, where: string, entry: Entry) => {
      const outcome = outcomeOf(view);
      const seen = outcomes.get(id);
      if (!seen) outcomes.set(id, { outcome, where });
      else if (seen.outcome !== outcome) flag('result-changed', `${seen.where} said ${seen.outcome}, ${where} says ${outcome}`, { id, entry });
    };

    for (const ticket of index.values()) {
      const entry = this.entry(ticket.seq);
      const reads = (this.reads.get(ticket.id) ?? []).filter((r) => r.client === ticket.client);
      if (ticket.queued && reads.length === 0) flag('lost-ticket', 'the ticket was never read back', { id: ticket.id, entry });
      let unrecorded = false;
      for (const [n, { reply }] of reads.entries()) {
        if (reply.status === 404) {
          if (ticket.queued) flag('lost-ticket', `read ${n + 1}: 404 for an issued ticket`, { id: ticket.id, entry });
          else unrecorded = true;
          continue;
        }
        if (reply.status !== 200) {
          flag(ticket.queued ? 'lost-ticket' : 'server-error', `read ${n + 1}: unreadable (${describe(reply)})`, { id: ticket.id, entry });
          continue;
        }
        const view = (reply.body ?? {}) as TicketView;
        this.judgeTicket(entry, ticket.id, view, `read ${n + 1}`, flag);
        sameOutcome(ticket.id, view, `read ${n + 1}`, entry);
      }
      if (unrecorded) counts.unrecorded200 += 1;
    }

    for (const { reader, id, reply } of this.foreign) {
      const owner = index.get(id);
      if (reply.status !== 404) {
        flag('foreign-read', `${reader} read ${owner?.client ?? 'nobody'}'s ticket: ${describe(reply)}`, { id, client: reader, ...(owner ? { entry: this.entry(owner.seq) } : {}) });
      }
    }

    const deliveredTo = new Map<string, string[]>();
    for (const { client, ticket } of this.deliveries) {
      const id = typeof ticket.id === 'string' ? ticket.id : '';
      deliveredTo.set(id, [...(deliveredTo.get(id) ?? []), client]);
      const owner = index.get(id);
      if (!owner) {
        const twin = this.findByContent(client, ticket);
        if (twin) flag('stray-ticket', `delivered ${id}, an id never answered to this client, for the same input as this request (${outcomeOf(ticket)})`, { id, entry: twin });
        else flag('unknown-delivery', `delivered ${id}, which matches no request of ${client}: ${JSON.stringify(ticket)}`, { id, client });
        continue;
      }
      const entry = this.entry(owner.seq);
      if (owner.client !== client) {
        flag('foreign-delivery', `${owner.client}'s ticket delivered to ${client}`, { id, entry });
        continue;
      }
      this.judgeTicket(entry, id, ticket, 'delivery', flag);
      sameOutcome(id, ticket, 'the delivery', entry);
    }
    for (const [id, clients] of deliveredTo) {
      if (clients.length > 1 && id !== '') {
        const owner = index.get(id);
        flag('delivered-twice', `delivered ${clients.length} times (to ${clients.join(', ')})`, { id, ...(owner ? { entry: this.entry(owner.seq) } : {}) });
      }
    }
    for (const ticket of index.values()) {
      if (ticket.queued && !deliveredTo.has(ticket.id)) {
        flag('undelivered', '/pending_results never delivered this queued ticket', { id: ticket.id, entry: this.entry(ticket.seq) });
      }
    }

    for (const v of violations) counts[v.category] += 1;
    return { counts, violations };
  }

  private judgeAnswers(entry: Entry, counts: LedgerCounts, flag: Flag): void {
    const ids = new Set<string>();
    for (const send of entry.sends) {
      if (send.kind !== 'first') counts.replays += 1;
      counts.attempts += send.replies.length;
      let answered = false;
      for (const reply of send.replies) {
        counts.byStatus[reply.status] = (counts.byStatus[reply.status] ?? 0) + 1;
        if (answered) continue; // the client stops at the first definitive answer
        if (!isDefinitive(reply.status)) {
          if (reply.status >= 500 && reply.status !== 503) flag('server-error', `answered ${describe(reply)}`, { entry });
          continue;
        }
        answered = true;
        if (send.kind === 'first') {
          if (reply.status === 200) counts.ok200 += 1;
          else if (reply.status === 202) counts.queued202 += 1;
          else counts.rejected4xx += 1;
        }
        const id = this.judgeAnswer(entry, reply, flag);
        if (id !== undefined) ids.add(id);
      }
      counts.retries += Math.max(0, send.replies.length - 1);
      if (!answered) flag('unanswered', `no definitive answer after ${send.replies.length} attempts (${send.kind} send)`, { entry });
    }
    if (ids.size > 1) flag('id-changed', `one Idempotency-Key, ${ids.size} ids: ${[...ids].join(', ')}`, { entry });
  }

  /** Checks one definitive answer against the expected outcome; returns the id it carries. */
  private judgeAnswer(entry: Entry, reply: Reply, flag: Flag): string | undefined {
    const { expect } = entry.spec;
    const body = (reply.body ?? {}) as { id?: unknown; result?: unknown; status?: unknown; error?: { code?: unknown } };
    if (reply.status === 200 || reply.status === 202) {
      if (expect.kind === 'error') {
        flag('invalid-accepted', `expected ${expect.status} ${expect.code}, got ${describe(reply)}`, { entry });
      } else if (reply.status === 200 && !sameNumber(body.result, expect.value)) {
        flag('wrong-result', `200 with result ${String(body.result)}, expected ${expect.value}`, { entry, ...(typeof body.id === 'string' ? { id: body.id } : {}) });
      } else if (reply.status === 202 && body.status !== 'queued') {
        flag('wrong-result', `202 without status queued: ${describe(reply)}`, { entry });
      }
      if (typeof body.id !== 'string' || body.id === '') {
        flag('wrong-result', `${reply.status} without an id: ${describe(reply)}`, { entry });
        return undefined;
      }
      return body.id;
    }
    if (expect.kind === 'value') {
      flag('valid-rejected', `expected ${expect.value}, got ${describe(reply)}`, { entry });
    } else if (reply.status !== expect.status || body.error?.code !== expect.code) {
      flag('wrong-error', `expected ${expect.status} ${expect.code}, got ${describe(reply)}`, { entry });
    }
    return undefined;
  }

  /** A ticket read or delivered must be done, with the reference result and the request's own input. */
  private judgeTicket(entry: Entry, id: string, view: TicketView, where: string, flag: Flag): void {
    const { spec } = entry;
    if (view.id !== id) flag('ticket-mismatch', `${where}: ticket says id ${String(view.id)}`, { id, entry });
    if (view.operation !== spec.operation || !sameInput(view, spec)) {
      flag('ticket-mismatch', `${where}: ticket is for ${inputOf(view)}`, { id, entry });
    }
    if (view.status === 'queued') {
      flag('not-done', `${where}: still queued after the queues drained`, { id, entry });
    } else if (view.status === 'failed') {
      const domainExpected = spec.expect.kind === 'error' && spec.expect.code === 'DOMAIN_ERROR';
      if (!domainExpected || view.error?.code !== 'DOMAIN_ERROR') flag('failed-ticket', `${where}: failed with ${JSON.stringify(view.error)}`, { id, entry });
    } else if (view.status === 'done') {
      if (spec.expect.kind !== 'value') flag('invalid-accepted', `${where}: done with ${String(view.result)} for input that must be refused`, { id, entry });
      else if (!sameNumber(view.result, spec.expect.value)) flag('wrong-result', `${where}: result ${String(view.result)}, expected ${spec.expect.value}`, { id, entry });
    } else {
      flag('ticket-mismatch', `${where}: status ${String(view.status)}`, { id, entry });
    }
  }

  /** A request of `client` with exactly this input, for a delivery whose id nobody was given. */
  private findByContent(client: string, view: TicketView): Entry | undefined {
    for (const entry of this.entries.values()) {
      if (entry.spec.client === client && entry.spec.operation === view.operation && sameInput(view, entry.spec)) return entry;
    }
    return undefined;
  }

  private ticketIndex() {
    const index = new Map<string, { id: string; client: string; queued: boolean; seq: number; seqs: Set<number> }>();
    for (const entry of this.entries.values()) {
      for (const send of entry.sends) {
        for (const reply of send.replies) {
          if (reply.status !== 200 && reply.status !== 202) continue;
          const id = (reply.body as { id?: unknown } | undefined)?.id;
          if (typeof id !== 'string' || id === '') continue;
          const known = index.get(id) ?? { id, client: entry.spec.client, queued: false, seq: entry.spec.seq, seqs: new Set<number>() };
          known.seqs.add(entry.spec.seq);
          if (reply.status === 202) known.queued = true;
          index.set(id, known);
        }
      }
    }
    return index;
  }

  private entry(seq: number): Entry {
    const entry = this.entries.get(seq);
    if (!entry) throw new Error(`unknown request ${seq}`);
    return entry;
  }
}

type Flag = (kind: ViolationKind, detail: string, about?: { entry?: Entry; id?: string; client?: string }) => void;

/** Equal as the contract's numbers: JSON has no -0, so 0 and -0 are one answer. */
const sameNumber = (actual: unknown, expected: number) => typeof actual === 'number' && (actual === expected || (Number.isNaN(actual) && Number.isNaN(expected)));

function sameInput(view: TicketView, spec: RequestSpec): boolean {
  if (spec.operation === 'evaluate') return view.expression === spec.expression;
  return sameNumber(view.num1, spec.num1 ?? NaN) && sameNumber(view.num2, spec.num2 ?? NaN);
}

const inputOf = (view: TicketView) =>
  view.operation === 'evaluate' ? `evaluate ${JSON.stringify(view.expression)}` : `${String(view.operation)} ${String(view.num1)} ${String(view.num2)}`;

function outcomeOf(view: TicketView): string {
  if (view.status === 'done') return `done ${String(view.result)}`;
  if (view.status === 'failed') return `failed ${String(view.error?.code)}`;
  return String(view.status);
}

function describe(reply: Reply): string {
  if (reply.status === 0) return `no answer (${reply.error ?? 'unknown'})`;
  return `${reply.status} ${JSON.stringify(reply.body ?? null).slice(0, 200)}`;
}

function story(entry: Entry): string {
  const sends = entry.sends.map((s) => `${s.kind}: ${s.replies.map((r) => (r.status === 0 ? 'none' : String(r.status))).join(' ')}`).join('; ');
  return `#${entry.spec.seq} ${entry.spec.client} ${entry.spec.label} [key ${entry.spec.key}] (${sends})`;
}
