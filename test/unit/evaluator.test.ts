import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CalcError, domainError } from '../../src/shared/errors.js';
import type { ArithmeticOp } from '../../src/shared/operations.js';
import { compute } from '../../src/domain/compute.js';
import {
  createEvaluator,
  evaluateLocally,
  parseExpression,
  type ArithmeticPort,
  type Expr,
} from '../../src/domain/index.js';

// Fixed so a failure reproduces; fast-check prints the seed and path of any counterexample.
const SEED = 5_2025;
const RUNS = 2000;

const inProcess: ArithmeticPort = { compute: async (op, a, b) => compute(op, a, b) };
const sameNumber = (a: number, b: number) => Object.is(a, b) || (a === 0 && b === 0);

/** A generated expression: what it means, plus how it is written (redundant parentheses). */
type Tree =
  | { kind: 'num'; text: string; negative: boolean; parens: number }
  | { kind: 'neg'; operand: Tree; parens: number }
  | { kind: 'bin'; op: ArithmeticOp; left: Tree; right: Tree; parens: number };

const SYMBOL: Record<ArithmeticOp, string> = { add: '+', subtract: '-', multiply: '*', divide: '/' };
const PRECEDENCE: Record<ArithmeticOp, number> = { add: 1, subtract: 1, multiply: 2, divide: 2 };

const digits = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength });

/** Literals in every written form: `12`, `1.5`, `.5`, `3.`, `2.5e-3`, plus String() of any double. */
const literal: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 4 }).map(String) }, // zeros make division by zero common
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.oneof(
          digits(1, 8),
          fc.tuple(digits(1, 8), digits(1, 8)).map(([i, f]) => `${i}.${f}`),
          digits(1, 8).map((f) => `.${f}`),
          digits(1, 8).map((i) => `${i}.`),
        ),
        fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 2)).map((parts) => parts.join(''))),
      )
      .map(([mantissa, exponent]) => mantissa + (exponent ?? '')),
  },
  { weight: 2, arbitrary: fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }).map(String) },
);

const parens = fc.integer({ min: 0, max: 2 });
const op = fc.constantFrom<ArithmeticOp>('add', 'subtract', 'multiply', 'divide');

// Depth 6 keeps the written nesting (signs + parentheses) under 30, well inside the limit of 64.
function treeOf(depth: number): fc.Arbitrary<Tree> {
  const leaf = fc.record({ kind: fc.constant('num' as const), text: literal, negative: fc.boolean(), parens });
  if (depth === 0) return leaf;
  const sub = treeOf(depth - 1);
  return fc.oneof(
    { weight: 2, arbitrary: leaf },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('neg' as const), operand: sub, parens }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('bin' as const), op, left: sub, right: sub, parens }) },
  );
}

const whitespace = fc.array(fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r\n'), maxLength: 3 }), { minLength: 1 });

function print(tree: Tree, spaces: readonly string[]): string {
  let next = 0;
  const ws = () => spaces[next++ % spaces.length] ?? '';
  const wrap = (text: string) => `(${ws()}${text}${ws()})`;
  const go = (node: Tree): string => {
    let text: string;
    if (node.kind === 'num') text = node.negative ? `-${ws()}${node.text}` : node.text;
    else if (node.kind === 'neg') text = `-${ws()}${node.operand.kind === 'bin' ? wrap(go(node.operand)) : go(node.operand)}`;
    else {
      const p = PRECEDENCE[node.op];
      const needs = (child: Tree, strict: boolean) => child.kind === 'bin' && (strict ? PRECEDENCE[child.op] <= p : PRECEDENCE[child.op] < p);
      const left = needs(node.left, false) ? wrap(go(node.left)) : go(node.left);
      // The right operand of a same-precedence operator needs parentheses: a-(b-c), a/(b*c).
      const right = needs(node.right, true) ? wrap(go(node.right)) : go(node.right);
      text = `${left}${ws()}${SYMBOL[node.op]}${ws()}${right}`;
    }
    for (let i = 0; i < node.parens; i++) text = wrap(text);
    return text;
  };
  return `${ws()}${go(tree)}${ws()}`;
}

/** The AST the parser must build: a negative literal is a negation of a positive one. */
function expected(tree: Tree): Expr {
  if (tree.kind === 'num') {
    const num: Expr = { kind: 'num', value: Number(tree.text) };
    return tree.negative ? { kind: 'neg', operand: num } : num;
  }
  if (tree.kind === 'neg') return { kind: 'neg', operand: expected(tree.operand) };
  return { kind: 'bin', op: tree.op, left: expected(tree.left), right: expected(tree.right) };
}

const DOMAIN = Symbol('domain error');

/** Plain IEEE arithmetic on the generated tree, written independently of compute(). */
function reference(tree: Tree): number | typeof DOMAIN {
  if (tree.kind === 'num') return tree.negative ? -Number(tree.text) : Number(tree.text);
  if (tree.kind === 'neg') {
    const value = reference(tree.operand);
    return value === DOMAIN ? DOMAIN : -value;
  }
  const a = reference(tree.left);
  const b = reference(tree.right);
  if (a === DOMAIN || b === DOMAIN) return DOMAIN;
  if (tree.op === 'divide' && b === 0) return DOMAIN;
  const result = tree.op === 'add' ? a + b : tree.op === 'subtract' ? a - b : tree.op === 'multiply' ? a * b : a / b;
  return Number.isFinite(result) ? result : DOMAIN;
}

async function outcome(run: () => number | Promise<number>): Promise<number | typeof DOMAIN> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof CalcError && error.code === 'DOMAIN_ERROR') return DOMAIN;
    throw error;
  }
}

describe('evaluation against a reference (property)', () => {
  test('when a random expression is printed and parsed, then both evaluators agree with the reference', async () => {
    const evaluator = createEvaluator({ arithmetic: inProcess });
    await fc.assert(
      fc.asyncProperty(treeOf(6), whitespace, async (tree, spaces) => {
        const text = print(tree, spaces);
        const expr = parseExpression(text);
        assert.deepEqual(expr, expected(tree), text);
        const want = reference(tree);
        const outcomes: Array<number | typeof DOMAIN> = [await outcome(() => evaluator.evaluate(expr)), await outcome(() => evaluateLocally(expr))];
        for (const got of outcomes) {
          if (want === DOMAIN || got === DOMAIN) assert.equal(got, want, text);
          else assert.ok(sameNumber(got, want), `${text}: got ${got}, want ${want}`);
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  test('when the input is garbage, then the only failure is INVALID_ARGUMENT with a position inside it', () => {
    const grammarish = fc.string({ unit: fc.constantFrom(...'0123456789.eE+-*/() \t\nx^%,'), maxLength: 40 });
    fc.assert(
      fc.property(fc.oneof(grammarish, fc.string({ unit: 'binary', maxLength: 20 }), fc.anything()), (input) => {
        let expr: Expr;
        try {
          expr = parseExpression(input);
        } catch (error) {
          assert.ok(error instanceof CalcError && error.code === 'INVALID_ARGUMENT', String(error));
          if (typeof input === 'string') {
            const position = Number(/at position (\d+)/.exec(error.message)?.[1]);
            assert.ok(position >= 1 && position <= input.length + 1, error.message);
          }
          return;
        }
        assert.equal(typeof input, 'string');
        try {
          assert.ok(Number.isFinite(evaluateLocally(expr)));
        } catch (error) {
          assert.ok(error instanceof CalcError && error.code === 'DOMAIN_ERROR', String(error));
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

/** A port whose calls stay pending until the test settles them, so concurrency is observable. */
function heldPort() {
  const calls: Array<{ op: ArithmeticOp; a: number; b: number; resolve: (value: number) => void; reject: (error: unknown) => void }> = [];
  const port: ArithmeticPort = {
    compute: (op, a, b) => new Promise((resolve, reject) => calls.push({ op, a, b, resolve, reject })),
  };
  const pending = () => calls.map(({ op, a, b }) => `${op}(${a},${b})`).sort();
  return { port, calls, pending };
}

// setImmediate runs after every queued promise reaction: the evaluator has issued all it can.
const drained = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('createEvaluator', () => {
  test('when two subtrees are independent, then their calls are in flight at the same time', async () => {
    const { port, calls, pending } = heldPort();
    const result = createEvaluator({ arithmetic: port }).evaluate(parseExpression('(1+2)*(3+4)'));
    await drained();
    assert.deepEqual(pending(), ['add(1,2)', 'add(3,4)']);
    calls[0]?.resolve(3);
    calls[1]?.resolve(7);
    await drained();
    assert.deepEqual(calls[2] && [calls[2].op, calls[2].a, calls[2].b], ['multiply', 3, 7]);
    calls[2]?.resolve(21);
    assert.equal(await result, 21);
  });

  test('when a balanced tree has eight leaves, then four calls go out before any answer', async () => {
    const { port, calls } = heldPort();
    const result = createEvaluator({ arithmetic: port }).evaluate(parseExpression('((1+1)+(1+1))+((1+1)+(1+1))'));
    for (const width of [4, 2, 1]) {
      await drained();
      const wave = calls.splice(0);
      assert.equal(wave.length, width);
      for (const call of wave) call.resolve(call.a + call.b);
    }
    assert.equal(await result, 8);
  });

  test('when the expression divides by zero, then DOMAIN_ERROR comes back from the port', async () => {
    const evaluator = createEvaluator({ arithmetic: inProcess });
    for (const text of ['1/0', '(1+2)/(3-3)', '1e200*1e200', '-(1/-0)']) {
      await assert.rejects(evaluator.evaluate(parseExpression(text)), { code: 'DOMAIN_ERROR' }, text);
    }
  });

  test('when the port fails with any error, then that same error propagates', async () => {
    for (const failure of [domainError('division by zero'), new Error('connection reset'), 'not even an Error']) {
      const port: ArithmeticPort = { compute: async () => Promise.reject(failure) };
      await assert.rejects(createEvaluator({ arithmetic: port }).evaluate(parseExpression('1+2')), (error) => error === failure);
    }
  });

  test('when one call has failed, then the calls still waiting for operands are never made', async () => {
    const { port, calls, pending } = heldPort();
    const result = createEvaluator({ arithmetic: port }).evaluate(parseExpression('(1/0)+((1+2)+3)'));
    await drained();
    assert.deepEqual(pending(), ['add(1,2)', 'divide(1,0)']);
    calls.find((call) => call.op === 'divide')?.reject(domainError('division by zero'));
    calls.find((call) => call.op === 'add')?.resolve(3);
    await assert.rejects(result, { code: 'DOMAIN_ERROR' });
    await drained();
    assert.equal(calls.length, 2);
  });

  test('when two calls fail, then the first failure is reported even if the second is nearer the root', async () => {
    const { port, calls } = heldPort();
    const result = createEvaluator({ arithmetic: port }).evaluate(parseExpression('(((1/0)+5)+6)+(1+2)'));
    await drained();
    const first = domainError('division by zero');
    calls.find((call) => call.op === 'divide')?.reject(first);
    calls.find((call) => call.op === 'add')?.reject(new Error('a later failure'));
    await assert.rejects(result, (error) => error === first);
  });

  test('when the expression only negates, then the port is never called and -0 reads as 0', async () => {
    const port: ArithmeticPort = { compute: async () => assert.fail('negation must be local') };
    const evaluator = createEvaluator({ arithmetic: port });
    assert.equal(await evaluator.evaluate(parseExpression('-(-(3))')), 3);
    assert.ok(Object.is(await evaluator.evaluate(parseExpression('-0')), 0));
    assert.ok(Object.is(evaluateLocally(parseExpression('-(0)')), 0));
  });

  test('when a hand-built tree shares a node, then it is computed once and every parent uses its value', async () => {
    const { port, calls } = heldPort();
    const shared: Expr = { kind: 'bin', op: 'add', left: { kind: 'num', value: 1 }, right: { kind: 'num', value: 2 } };
    // (1+2) * (1+2) - -(1+2): the same node is both operands of one parent and the operand of a negation.
    const tree: Expr = { kind: 'bin', op: 'subtract', left: { kind: 'bin', op: 'multiply', left: shared, right: shared }, right: { kind: 'neg', operand: shared } };
    const result = createEvaluator({ arithmetic: port }).evaluate(tree);
    await drained();
    assert.equal(calls.length, 1);
    calls[0]?.resolve(3);
    await drained();
    assert.deepEqual(calls.slice(1).map(({ op, a, b }) => `${op}(${a},${b})`), ['multiply(3,3)']);
    calls[1]?.resolve(9);
    await drained();
    assert.deepEqual(calls.slice(2).map(({ op, a, b }) => `${op}(${a},${b})`), ['subtract(9,-3)']);
    calls[2]?.resolve(12);
    assert.equal(await result, 12);
  });

  test('when maxInflight is 2, then never more than two calls are out and the others follow in the order they became ready', async () => {
    const { port, calls } = heldPort();
    const result = createEvaluator({ arithmetic: port, maxInflight: 2 }).evaluate(parseExpression('(1+1)+(2+2)+(3+3)+(4+4)'));
    const order: number[] = [];
    for (let settled = 0; settled < 7; settled++) {
      await drained();
      const open = calls.length - settled;
      assert.ok(open >= 1 && open <= 2, `${open} calls in flight`);
      const call = calls[settled]!;
      order.push(call.a);
      call.resolve(call.a + call.b);
    }
    // The four leaves' additions first, in the order the parser wrote them, then the chain.
    assert.deepEqual(order.slice(0, 4), [1, 2, 3, 4]);
    assert.equal(await result, 20);
  });

  test('when a hand-built tree is 100,000 levels deep, then both evaluators finish without a stack overflow', async () => {
    let sum: Expr = { kind: 'num', value: 0 };
    let negations: Expr = { kind: 'num', value: 7 };
    for (let i = 0; i < 100_000; i++) {
      sum = { kind: 'bin', op: 'add', left: sum, right: { kind: 'num', value: 1 } };
      negations = { kind: 'neg', operand: negations };
    }
    assert.equal(evaluateLocally(sum), 100_000);
    assert.equal(evaluateLocally(negations), 7);
    const evaluator = createEvaluator({ arithmetic: inProcess });
    assert.equal(await evaluator.evaluate(sum), 100_000);
    assert.equal(await evaluator.evaluate(negations), 7);
  });
});
