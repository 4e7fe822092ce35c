/**
 * The gateway's one decision (answer now, or queue and answer later) with fakes of its two
 * ports: the upstreams answer what each test scripts, the queue is an in-memory map.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { compute } from '../../src/domain/compute.js';
import { createDispatcher, type Job } from '../../src/gateway/dispatch.js';
import type { DurableQueue, NewTask, Ticket } from '../../src/queue/types.js';
import { CalcError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { UpstreamUnavailableError, type Upstreams } from '../../src/upstream/index.js';

type Script = () => Promise<number>;

const down = () => Promise.reject(new UpstreamUnavailableError('add: connection refused', '127.0.0.1:1', GrpcStatus.UNAVAILABLE));

function fakeUpstreams(script: Script): Upstreams & { calls: number } {
  const fake = {
    calls: 0,
    arithmetic: () => (fake.calls++, script()),
    evaluate: () => (fake.calls++, script()),
    status: () => ({}) as ReturnType<Upstreams['status']>,
    close() {},
  };
  return fake;
}

/** The part of DurableQueue the dispatcher uses, in memory; `failWrites` makes enqueue refuse. */
function fakeQueue(options: { failWrites?: 'refused' | 'applied-late' } = {}) {
  const tickets = new Map<string, Ticket>();
  const keys = new Map<string, string>();
  const enqueued: NewTask[] = [];
  const queue = {
    backend: 'sqlite',
    async enqueue(task: NewTask) {
      const ticket: Ticket = { id: task.id, client: task.client, status: 'queued', operation: task.operation, createdAt: 0 };
      if (options.failWrites === 'applied-late') tickets.set(task.id, ticket);
      if (options.failWrites) throw new CalcError('UNAVAILABLE', 'queue timed out');
      enqueued.push(task);
      tickets.set(task.id, ticket);
      return ticket;
    },
    async saveTicket(ticket: Ticket) { tickets.set(ticket.id, ticket); },
    async getTicket(client: string, id: string) {
      const t = tickets.get(id);
      return t && t.client === client ? t : undefined;
    },
    async reserveKey(client: string, key: string, id: string) {
      const held = keys.get(`${client}/${key}`);
      if (held !== undefined) return held;
      keys.set(`${client}/${key}`, id);
      return undefined;
    },
  };
  return { queue: queue as unknown as DurableQueue, tickets, enqueued };
}

const precheck = (job: Job) => {
  if (job.operation !== 'evaluate') compute(job.operation, job.num1, job.num2);
};
const logger = silentLogger();
const caller = { client: 'alice', requestId: 'r1' };
const add = (num1: number, num2: number): Job => ({ operation: 'add', num1, num2 });
const divide = (num1: number, num2: number): Job => ({ operation: 'divide', num1, num2 });

function dispatcher(script: Script, queueOptions?: Parameters<typeof fakeQueue>[0]) {
  const upstreams = fakeUpstreams(script);
  const q = fakeQueue(queueOptions);
  const d = createDispatcher({ upstreams, queue: q.queue, deadlineMs: 100, logger, precheck, keyWaitMs: 50 });
  return { ...d, upstreams, ...q };
}

describe('dispatcher', () => {
  it('when the service answers, then the answer is done with its result and nothing is queued', async () => {
    const d = dispatcher(async () => 13);
    const answer = await d.dispatch(add(6, 7), caller);
    assert.equal(answer.kind, 'done');
    assert.equal(answer.kind === 'done' && answer.result, 13);
    assert.equal(d.enqueued.length, 0);
  });

  it('when the service is unavailable, then the request is enqueued under the answer id with its client and request id', async () => {
    const d = dispatcher(down);
    const answer = await d.dispatch(add(2, 3), caller);
    assert.equal(answer.kind, 'queued');
    assert.deepEqual(d.enqueued, [{ id: answer.id, client: 'alice', requestId: 'r1', operation: 'add', num1: 2, num2: 3 }]);
  });

  it('when the service is unavailable and the request is a domain error, then it is refused at once and never queued', async () => {
    const d = dispatcher(down);
    await assert.rejects(d.dispatch(divide(1, 0), caller), (e: CalcError) => e.code === 'DOMAIN_ERROR');
    assert.equal(d.enqueued.length, 0);
  });

  it('when the service answers an error that is not about availability, then it is the answer and nothing is queued', async () => {
    const d = dispatcher(() => Promise.reject(new CalcError('UPSTREAM_ERROR', 'answered INTERNAL')));
    await assert.rejects(d.dispatch(add(1, 1), caller), (e: CalcError) => e.code === 'UPSTREAM_ERROR');
    assert.equal(d.enqueued.length, 0);
  });

  it('when service and queue are both unavailable, then the answer is UNAVAILABLE and no ticket exists', async () => {
    const d = dispatcher(down, { failWrites: 'refused' });
    await assert.rejects(d.dispatch(add(1, 1), caller), (e: CalcError) => e.code === 'UNAVAILABLE');
    assert.equal(d.tickets.size, 0);
  });

  it('when an enqueue timed out but was applied, then the request is answered as queued (one ticket, not a 503)', async () => {
    const d = dispatcher(down, { failWrites: 'applied-late' });
    const answer = await d.dispatch(add(1, 1), caller);
    assert.equal(answer.kind, 'queued');
    assert.equal(d.tickets.get(answer.id)?.status, 'queued');
  });

  it('when a key is reused for the same request, then the first outcome is replayed under the same id without a second call', async () => {
    const d = dispatcher(async () => 13);
    const keyed = { ...caller, idempotencyKey: 'k' };
    const first = await d.dispatch(add(6, 7), keyed);
    const second = await d.dispatch(add(6, 7), keyed);
    assert.deepEqual(second, first);
    assert.equal(d.upstreams.calls, 1);
  });

  it('when a key is reused for a different request, then it is CONFLICT and nothing is called', async () => {
    const d = dispatcher(async () => 13);
    const keyed = { ...caller, idempotencyKey: 'k' };
    await d.dispatch(add(6, 7), keyed);
    await assert.rejects(d.dispatch(add(6, 8), keyed), (e: CalcError) => e.code === 'CONFLICT');
    assert.equal(d.upstreams.calls, 1);
  });

  it('when a keyed request failed with a domain error while the service was down, then a retry replays that error', async () => {
    const d = dispatcher(down);
    const keyed = { ...caller, idempotencyKey: 'k' };
    await assert.rejects(d.dispatch(divide(1, 0), keyed), (e: CalcError) => e.code === 'DOMAIN_ERROR');
    await assert.rejects(d.dispatch(divide(1, 0), keyed), (e: CalcError) => e.code === 'DOMAIN_ERROR');
    assert.equal(d.enqueued.length, 0);
  });
});
