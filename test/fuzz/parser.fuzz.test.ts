/** Generated malformed expressions: the parser answers a value or INVALID_ARGUMENT with a position, nothing else. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CalcError } from '../../src/shared/errors.js';
import { evaluateLocally, parseExpression } from '../../src/domain/index.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);

test('when the parser gets generated near-expressions, then it returns a tree or INVALID_ARGUMENT with a position', () => {
  const nearExpression = fc.oneof(
    fc.stringMatching(/^[\d.eE+\-*/()\s]{0,80}$/),
    fc.string({ maxLength: 80 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.array(fc.constantFrom('(', ')', '1', '+', '-', '*', '/', '.', 'e', ' ', '**', '1e999', 'x'), { maxLength: 200 }).map((parts) => parts.join('')),
  );
  fc.assert(
    fc.property(nearExpression, (input) => {
      try {
        const tree = parseExpression(input);
        try {
          assert.ok(Number.isFinite(evaluateLocally(tree)));
        } catch (error) {
          assert.ok(error instanceof CalcError && error.code === 'DOMAIN_ERROR', String(error));
        }
      } catch (error) {
        assert.ok(error instanceof CalcError, `${JSON.stringify(input)}: ${String(error)}`);
        assert.equal(error.code, 'INVALID_ARGUMENT');
        assert.match(error.message, /position \d+/);
      }
    }),
    { numRuns: RUNS, seed: SEED },
  );
});
