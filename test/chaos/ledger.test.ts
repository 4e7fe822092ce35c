/**
 * The chaos ledger on hand-written stories: a clean run passes, and each way of losing, doubling,
 * miscomputing or misdelivering a result is flagged under its own kind and headline count.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ledger, type Reply, type SendKind } from './ledger.js';
import type { RequestSpec } from './workload.js';

const add = (seq: number, client = 'alice'): RequestSpec => ({
  seq, client, key: `k-${seq}`, method: 'GET', path: `/add/${seq}/0.5`, operation: 'add', num1: seq, num2: 0.5,
  label: `add ${seq} 0.5`, expect: { kind: 'value', value: seq + 0.5 },
});
const badOperand = (seq: number, client = 'alice'): RequestSpec => ({
  seq, client, key: `k-${seq}`, method: 'GET', path: `/add/abc/1`, operation: 'add', label: 'add abc 1',
  expect: { kind: 'error', status: 400, code: 'INVALID_ARGUMENT' },
});

const ok = (id: string, result: number): Reply => ({ status: 200, body: { operation: 'add', result, id } });
const queued = (id: string): Reply => ({ status: 202, body: { id, status: 'queued', message: '…' } });
const noAnswer: Reply = { status: 0, error: 'ECONNREFUSED' };
const ticket = (id: string, spec: RequestSpec, result: number, status = 'done') =>
  ({ id, status, operation: spec.operation, num1: spec.num1, num2: spec.num2, result, createdAt: 'x', completedAt: 'y' });
const read = (body: unknown): Reply => ({ status: 200, body });
const notFound: Reply = { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no ticket' } } };

function answer(ledger: Ledger, spec: RequestSpec, replies: Reply[], kind: SendKind = 'first') {
  const send = ledger.send(spec.seq, kind);
  for (const reply of replies) ledger.attempt(spec.seq, send, reply);
}

/** Two requests of alice: one answered directly, one queued, read twice and delivered once. */
function cleanStory() {
  const ledger = new Ledger();
  const direct = add(1);
  const later = add(2);
  ledger.issue(direct);
  ledger.issue(later);
  answer(ledger, direct, [ok('id-1', 1.5)]);
  answer(ledger, later, [noAnswer, noAnswer, queued('id-2')]);
  for (let pass = 0; pass < 2; pass++) {
    ledger.read('alice', 'id-1', read(ticket('id-1', direct, 1.5)));
    ledger.read('alice', 'id-2', read(ticket('id-2', later, 2.5)));
  }
  ledger.foreignRead('bob', 'id-2', notFound);
  ledger.deliver('alice', ticket('id-2', later, 2.5));
  return { ledger, direct, later };
}

const kinds = (ledger: Ledger) => ledger.verify().violations.map((v) => v.kind).sort();

describe('chaos ledger', () => {
  test('when every answer is right and every ticket delivered once, then it finds nothing and counts the retries', () => {
    const { ledger } = cleanStory();
    const { counts, violations } = ledger.verify();
    assert.deepEqual(violations, []);
    assert.equal(counts.requests, 2);
    assert.equal(counts.retries, 2);
    assert.equal(counts.ok200, 1);
    assert.equal(counts.queued202, 1);
    assert.equal(counts.tickets, 1);
    assert.equal(counts.delivered, 1);
    assert.deepEqual([counts.lost, counts.doubled, counts.wrong, counts.misdelivered], [0, 0, 0, 0]);
  });

  test('when a queued ticket reads 404 and is never delivered, then it is lost', () => {
    const ledger = new Ledger();
    const spec = add(7);
    ledger.issue(spec);
    answer(ledger, spec, [queued('id-7')]);
    ledger.read('alice', 'id-7', notFound);
    const { counts, violations } = ledger.verify();
    assert.deepEqual(violations.map((v) => v.kind).sort(), ['lost-ticket', 'undelivered']);
    assert.equal(counts.lost, 2);
    assert.match(violations[0]!.request!, /#7 alice add 7 0.5 \[key k-7\] \(first: 202\)/);
  });

  test('when a ticket is still queued after the drain, or a request never got an answer, then it is lost', () => {
    const ledger = new Ledger();
    const stuck = add(1);
    const dropped = add(2);
    ledger.issue(stuck);
    ledger.issue(dropped);
    answer(ledger, stuck, [queued('id-1')]);
    answer(ledger, dropped, [noAnswer, { status: 503, body: { error: { code: 'UNAVAILABLE' } } }]);
    ledger.read('alice', 'id-1', read({ ...ticket('id-1', stuck, 0), status: 'queued', result: undefined }));
    ledger.deliver('alice', ticket('id-1', stuck, 1.5));
    assert.deepEqual(kinds(ledger), ['not-done', 'result-changed', 'unanswered']);
  });

  test('when two reads of one ticket disagree, then it is doubled (and the wrong one is wrong)', () => {
    const { ledger, later } = cleanStory();
    ledger.read('alice', 'id-2', read(ticket('id-2', later, 3)));
    const { counts } = ledger.verify();
    assert.deepEqual(kinds(ledger), ['result-changed', 'wrong-result']);
    assert.equal(counts.doubled, 1);
    assert.equal(counts.wrong, 1);
  });

  test('when a result is delivered twice, or the delivery disagrees with the read, then it is doubled', () => {
    const twice = cleanStory();
    twice.ledger.deliver('alice', ticket('id-2', twice.later, 2.5));
    assert.deepEqual(kinds(twice.ledger), ['delivered-twice']);

    const differs = new Ledger();
    const spec = add(3);
    differs.issue(spec);
    answer(differs, spec, [queued('id-3')]);
    differs.read('alice', 'id-3', read(ticket('id-3', spec, 3.5)));
    differs.deliver('alice', { ...ticket('id-3', spec, 3.5), status: 'failed', result: undefined, error: { code: 'UPSTREAM_ERROR', message: 'gave up' } });
    assert.deepEqual(kinds(differs), ['failed-ticket', 'result-changed']);
  });

  test('when a replay of a key or a concurrent twin gets another id, then it is doubled', () => {
    const { ledger, direct } = cleanStory();
    answer(ledger, direct, [ok('id-1b', 1.5)], 'replay');
    answer(ledger, direct, [ok('id-1c', 1.5)], 'twin');
    const { counts, violations } = ledger.verify();
    assert.deepEqual(violations.map((v) => v.kind), ['id-changed']);
    assert.match(violations[0]!.detail, /3 ids: id-1, id-1b, id-1c/);
    assert.equal(counts.replays, 2);
  });

  test('when a ticket the client never saw repeats one of its requests, then the request was stored twice', () => {
    const { ledger, later } = cleanStory();
    ledger.deliver('alice', ticket('id-ghost', later, 2.5));
    assert.deepEqual(kinds(ledger), ['stray-ticket']);
    assert.equal(ledger.verify().counts.doubled, 1);
  });

  test('when a 200 or a ticket carries a result other than the reference, then it is wrong', () => {
    const ledger = new Ledger();
    const direct = add(1);
    const later = add(2);
    ledger.issue(direct);
    ledger.issue(later);
    answer(ledger, direct, [ok('id-1', 1.25)]);
    answer(ledger, later, [queued('id-2')]);
    ledger.read('alice', 'id-2', read(ticket('id-2', later, 2)));
    ledger.deliver('alice', ticket('id-2', later, 2));
    const { counts } = ledger.verify();
    assert.deepEqual(kinds(ledger), ['wrong-result', 'wrong-result', 'wrong-result']);
    assert.equal(counts.wrong, 3);
  });

  test('when valid input is refused, invalid input accepted, or the wrong error sent, then it is wrong', () => {
    const ledger = new Ledger();
    const valid = add(1);
    const invalid = badOperand(2);
    const wrongCode = badOperand(3);
    const queuedInvalid = badOperand(4);
    for (const spec of [valid, invalid, wrongCode, queuedInvalid]) ledger.issue(spec);
    answer(ledger, valid, [{ status: 409, body: { error: { code: 'CONFLICT', message: '' } } }]);
    answer(ledger, invalid, [ok('id-2', 1)]);
    answer(ledger, wrongCode, [{ status: 422, body: { error: { code: 'DOMAIN_ERROR', message: '' } } }]);
    answer(ledger, queuedInvalid, [queued('id-4')]);
    assert.deepEqual(
      ledger.verify().violations.filter((v) => v.category === 'wrong').map((v) => v.kind).sort(),
      ['invalid-accepted', 'invalid-accepted', 'valid-rejected', 'wrong-error'],
    );
  });

  test('when a ticket names other operands, or a 500 is sent, then it is wrong', () => {
    const { ledger, later } = cleanStory();
    ledger.read('alice', 'id-2', read({ ...ticket('id-2', later, 2.5), num1: 99 }));
    const flaky = add(5);
    ledger.issue(flaky);
    answer(ledger, flaky, [{ status: 500, body: { error: { code: 'INTERNAL' } } }, ok('id-5', 5.5)]);
    assert.deepEqual(kinds(ledger), ['server-error', 'ticket-mismatch']);
  });

  test("when another client's ticket is delivered to or readable by a client, then it is misdelivered", () => {
    const { ledger, later } = cleanStory();
    ledger.deliver('bob', ticket('id-2', later, 2.5));
    ledger.foreignRead('carol', 'id-2', read(ticket('id-2', later, 2.5)));
    const { counts, violations } = ledger.verify();
    assert.deepEqual(violations.map((v) => v.kind).sort(), ['delivered-twice', 'foreign-delivery', 'foreign-read']);
    assert.equal(counts.misdelivered, 2);
    assert.equal(violations.find((v) => v.kind === 'foreign-delivery')!.detail, "alice's ticket delivered to bob");
  });

  test('when a delivery matches no request of the client at all, then it is misdelivered', () => {
    const { ledger } = cleanStory();
    ledger.deliver('alice', { id: 'id-x', status: 'done', operation: 'multiply', num1: 6, num2: 7, result: 42 });
    assert.deepEqual(kinds(ledger), ['unknown-delivery']);
  });

  test('when a direct 200 has no ticket to read, then it is counted but not a violation', () => {
    const ledger = new Ledger();
    const spec = add(1);
    ledger.issue(spec);
    answer(ledger, spec, [ok('id-1', 1.5)]);
    ledger.read('alice', 'id-1', notFound);
    const { counts, violations } = ledger.verify();
    assert.deepEqual(violations, []);
    assert.equal(counts.unrecorded200, 1);
  });
});
