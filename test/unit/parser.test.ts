import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CalcError } from '../../src/shared/errors.js';
import {
  evaluateLocally,
  MAX_DEPTH,
  MAX_EXPRESSION_CHARS,
  parseExpression,
  usedOperations,
} from '../../src/domain/index.js';

/** The error a parse throws, checked to be a CalcError; fails the test when the parse succeeds. */
function parseFailure(input: unknown): CalcError {
  try {
    parseExpression(input);
  } catch (error) {
    assert.ok(error instanceof CalcError, `expected a CalcError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${JSON.stringify(input)} to be rejected`);
}

function positionOf(error: CalcError): number {
  const match = /at position (\d+)/.exec(error.message);
  assert.ok(match?.[1] !== undefined, `no position in ${JSON.stringify(error.message)}`);
  return Number(match[1]);
}

const VALID: ReadonlyArray<readonly [string, number]> = [
  ['12', 12],
  ['1.5', 1.5],
  ['.5', 0.5],
  ['1.', 1],
  ['1e3', 1000],
  ['2.5E-3', 0.0025],
  ['1e+2', 100],
  ['007', 7],
  ['1e-400', 0],
  ['1+2*3', 7],
  ['(1+2)*3', 9],
  ['10-4-3', 3],
  ['8/4/2', 1],
  ['2*3/4', 1.5],
  ['0.1+0.2', 0.1 + 0.2],
  ['-3', -3],
  ['+3', 3],
  ['--3', 3],
  ['-+-3', 3],
  ['1--1', 2],
  ['2*-3', -6],
  ['-(2+3)', -5],
  ['-2*-2', 4],
  ['(6+7)*3 - 8/2', 35],
  [' \t\n1 \r\n+\t2 \n', 3],
  ['((((1))))', 1],
  ['-0', 0],
  ['1-1', 0],
];

const INVALID: ReadonlyArray<readonly [input: string, position: number]> = [
  ['2**3', 3],
  ['x+1', 1],
  ['(1+2', 5],
  ['1+', 3],
  [')', 1],
  ['', 1],
  ['   ', 4],
  ['\t\n', 3],
  ['1 2', 3],
  ['1e', 2],
  ['1.2.3', 4],
  ['.', 1],
  ['-', 2],
  ['()', 2],
  ['(1+2))', 6],
  ['1+2)', 4],
  ['2^3', 2],
  ['1 % 2', 3],
  ['1 + * 2', 5],
  ['Infinity', 1],
  ['NaN', 1],
  ['0x10', 2],
  ['1,5', 2],
  ['1\u00a0+ 1', 2],
  ['１', 1],
  ['1e999', 1],
  ['2 + 1e400', 5],
  ['2+3 😀', 5],
];

describe('parseExpression', () => {
  for (const [input, expected] of VALID) {
    test(`when given ${JSON.stringify(input)}, then it evaluates to ${expected}`, () => {
      assert.ok(Object.is(evaluateLocally(parseExpression(input)), expected));
    });
  }

  for (const [input, position] of INVALID) {
    test(`when given ${JSON.stringify(input)}, then it is INVALID_ARGUMENT at position ${position}`, () => {
      const error = parseFailure(input);
      assert.equal(error.code, 'INVALID_ARGUMENT');
      assert.equal(positionOf(error), position, error.message);
    });
  }

  test('when an operator is doubled, then the message names it and its position', () => {
    assert.match(parseFailure('2**3').message, /^unexpected '\*' at position 3\b/);
    assert.match(parseFailure('2+3 😀').message, /unexpected '😀'/);
    assert.match(parseFailure('1\u0000').message, /unexpected character U\+0000 at position 2/);
  });

  test('when binary operators chain, then they associate to the left and * binds tighter', () => {
    assert.deepEqual(parseExpression('1-2-3'), {
      kind: 'bin', op: 'subtract',
      left: { kind: 'bin', op: 'subtract', left: { kind: 'num', value: 1 }, right: { kind: 'num', value: 2 } },
      right: { kind: 'num', value: 3 },
    });
    assert.deepEqual(parseExpression('-2*+3'), {
      kind: 'bin', op: 'multiply',
      left: { kind: 'neg', operand: { kind: 'num', value: 2 } },
      right: { kind: 'num', value: 3 },
    });
  });

  test('when the input is not a string, then it is INVALID_ARGUMENT', () => {
    for (const input of [42, null, undefined, {}, [], ['1+2'], { expression: '1+2' }, true, 1n]) {
      assert.equal(parseFailure(input).code, 'INVALID_ARGUMENT', String(input));
    }
  });
});

describe('limits', () => {
  // '1+1+…+1 ' is also the deepest AST the length allows: about 2,000 nested binary nodes.
  const longest = `${'1+'.repeat((MAX_EXPRESSION_CHARS - 2) / 2)}1 `;

  test(`when the expression is ${MAX_EXPRESSION_CHARS} characters, then it is accepted`, () => {
    assert.equal(longest.length, MAX_EXPRESSION_CHARS);
    assert.equal(evaluateLocally(parseExpression(longest)), MAX_EXPRESSION_CHARS / 2);
  });

  test(`when the expression is ${MAX_EXPRESSION_CHARS + 1} characters, then it is rejected at the first extra one`, () => {
    const error = parseFailure(`${longest} `);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.equal(positionOf(error), MAX_EXPRESSION_CHARS + 1);
  });

  const nested = (depth: number) => `${'('.repeat(depth)}1${')'.repeat(depth)}`;
  const depthCases: ReadonlyArray<readonly [name: string, build: (depth: number) => string]> = [
    ['parentheses', nested],
    ['unary minuses', (depth) => `${'-'.repeat(depth)}1`],
    ['unary pluses', (depth) => `${'+'.repeat(depth)}1`],
    ['signs and parentheses mixed', (depth) => `${'-('.repeat(depth / 2)}1${')'.repeat(depth / 2)}`],
  ];
  for (const [name, build] of depthCases) {
    test(`when ${name} nest ${MAX_DEPTH} deep, then it is accepted`, () => {
      assert.equal(Math.abs(evaluateLocally(parseExpression(build(MAX_DEPTH)))), 1);
    });
    test(`when ${name} nest ${MAX_DEPTH + 2} deep, then it is rejected where depth ${MAX_DEPTH + 1} opens`, () => {
      const error = parseFailure(build(MAX_DEPTH + 2));
      assert.equal(error.code, 'INVALID_ARGUMENT');
      assert.equal(positionOf(error), MAX_DEPTH + 1);
      assert.match(error.message, /nesting deeper than 64/);
    });
  }

  test('when siblings are each nested to the limit, then their depths do not add up', () => {
    assert.equal(evaluateLocally(parseExpression(`${nested(MAX_DEPTH)}+${nested(MAX_DEPTH)}*-${nested(MAX_DEPTH - 1)}`)), 0);
  });

  test('when 2,000 parentheses nest within the length limit, then the depth limit rejects them cleanly', () => {
    const error = parseFailure(nested(2000));
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.equal(positionOf(error), MAX_DEPTH + 1);
  });

  for (const [name, input] of [
    ['100,000 nested parentheses', nested(100_000)],
    ['100,000 unary minuses', `${'-'.repeat(100_000)}1`],
  ] as const) {
    test(`when given ${name}, then it is INVALID_ARGUMENT and never a stack overflow`, () => {
      assert.equal(parseFailure(input).code, 'INVALID_ARGUMENT');
    });
  }
});

describe('usedOperations', () => {
  const cases: ReadonlyArray<readonly [string, string[]]> = [
    ['(2+3)*4', ['add', 'multiply']],
    ['2+3-1', ['add', 'subtract']],
    ['8/-2', ['divide']],
    ['-(-(3))', []],
    ['42', []],
  ];
  for (const [input, ops] of cases) {
    test(`when the expression is ${JSON.stringify(input)}, then it needs ${ops.join(', ') || 'no service'}`, () => {
      assert.deepEqual([...usedOperations(parseExpression(input))].sort(), ops);
    });
  }
});
