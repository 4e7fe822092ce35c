/**
 * The chaos workload's own reference must agree with calcmesh's pure functions on what it
 * generates; otherwise a chaos run would blame the system for the test's mistakes. (The chaos run
 * itself never calls these functions: it judges the system against the reference alone.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compute } from '../../src/domain/compute.js';
import { evaluateLocally, parseExpression } from '../../src/domain/index.js';
import { parseOperand } from '../../src/domain/operands.js';
import { CalcError } from '../../src/shared/errors.js';
import { createRng } from './rng.js';
import { nextRequest, type RequestSpec } from './workload.js';

const SAMPLES = 5000;

/** What calcmesh's pure code says the outcome of a request is. */
function oracle(spec: RequestSpec): { value: number } | { status: number; code: string } {
  try {
    if (spec.operation === 'evaluate') {
      const body = JSON.parse(spec.body!) as { expression?: unknown };
      if (typeof body !== 'object' || body === null || Array.isArray(body) || typeof body.expression !== 'string') {
        return { status: 400, code: 'INVALID_ARGUMENT' };
      }
      return { value: evaluateLocally(parseExpression(body.expression)) };
    }
    const [, op, a, b] = spec.path.split('/');
    if (!['add', 'subtract', 'multiply', 'divide'].includes(op!)) return { status: 400, code: 'INVALID_ARGUMENT' };
    const value = compute(op as 'add', parseOperand(decodeURIComponent(a!), 'a'), parseOperand(decodeURIComponent(b!), 'b'));
    return { value };
  } catch (error) {
    if (error instanceof SyntaxError) return { status: 400, code: 'INVALID_ARGUMENT' };
    assert.ok(error instanceof CalcError, String(error));
    return { status: error.httpStatus, code: error.code };
  }
}

describe('chaos workload', () => {
  test('when requests are generated, then the reference outcome matches calcmesh\'s pure functions', () => {
    const rng = createRng(424242);
    const seen = { value: 0, domain: 0, invalid: 0, evaluate: 0 };
    for (let seq = 0; seq < SAMPLES; seq++) {
      const spec = nextRequest(rng, 'alice', seq, `k${seq}`);
      const expected = oracle(spec);
      if (spec.expect.kind === 'value') {
        assert.deepEqual(expected, { value: spec.expect.value }, spec.label);
        seen.value++;
      } else {
        assert.deepEqual(expected, { status: spec.expect.status, code: spec.expect.code }, spec.label);
        if (spec.expect.code === 'DOMAIN_ERROR') seen.domain++;
        else seen.invalid++;
      }
      if (spec.operation === 'evaluate') seen.evaluate++;
    }
    // The mix really contains every kind of request.
    assert.ok(seen.value > SAMPLES * 0.6 && seen.domain > SAMPLES * 0.02 && seen.invalid > SAMPLES * 0.08 && seen.evaluate > SAMPLES * 0.3, JSON.stringify(seen));
  });

  test('when the same seed is used twice, then the same requests are generated', () => {
    const a = createRng('same');
    const b = createRng('same');
    for (let i = 0; i < 100; i++) assert.deepEqual(nextRequest(a, 'bob', i, `k${i}`), nextRequest(b, 'bob', i, `k${i}`));
  });
});
