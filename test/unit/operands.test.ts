import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOperand } from '../../src/domain/operands.js';
import { CalcError } from '../../src/shared/errors.js';

describe('parseOperand', () => {
  const good: Array<[string, number]> = [
    ['0', 0], ['13', 13], ['-4', -4], ['+4', 4], ['1.5', 1.5], ['-0.25', -0.25], ['.5', 0.5], ['5.', 5],
    ['1e3', 1000], ['2.5E-3', 0.0025], ['-1e+2', -100], ['1e308', 1e308], ['1e-400', 0], ['007', 7],
  ];
  for (const [raw, expected] of good) {
    test(`when given ${JSON.stringify(raw)}, then it reads ${expected}`, () => {
      assert.equal(parseOperand(raw, 'a'), expected);
    });
  }

  const bad = ['', 'abc', 'NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '0x10', '0b1', '0o7', ' 1', '1 ', '1,5', '1_000',
    '--1', '1e', 'e3', '.', '-', '+', '1.2.3', '١٢', '1e3.5', 'null', 'true', '[]', '9'.repeat(401)];
  for (const raw of bad) {
    test(`when given ${JSON.stringify(raw.slice(0, 20))}, then it is INVALID_ARGUMENT naming the operand`, () => {
      assert.throws(() => parseOperand(raw, 'b'), (error: unknown) => {
        assert.ok(error instanceof CalcError);
        assert.equal(error.code, 'INVALID_ARGUMENT');
        assert.match(error.message, /^b /);
        return true;
      });
    });
  }
});
