/**
 * Evaluation of a parsed expression. The evaluator knows nothing of gRPC: it calls arithmetic
 * through an injected port, and the caller closes the deadline and request id over that port.
 *
 * Semantics shared by both evaluators: each binary node is one `compute(op, a, b)` (so division
 * by zero and non-finite results are DOMAIN_ERROR); negation is done locally, never as a call,
 * so `-x` needs no service; and it yields 0 rather than -0, as `compute` does for its results.
 *
 * Neither evaluator recurses: a parsed AST can be ~2,000 levels deep (`1+1+1+…`), and an AST
 * built by hand has no limit at all.
 */
import { CalcError } from '../shared/errors.js';
import type { ArithmeticOp } from '../shared/operations.js';
import { compute } from './compute.js';
import { postOrder, type Expr } from './parser.js';

export interface ArithmeticPort {
  compute(op: ArithmeticOp, a: number, b: number): Promise<number>;
}

export interface Evaluator {
  evaluate(expr: Expr): Promise<number>;
}

const negate = (value: number) => (value === 0 ? 0 : -value);

function lookup<T>(values: Map<Expr, T>, node: Expr): T {
  const value = values.get(node);
  if (value === undefined) throw new CalcError('INTERNAL', 'evaluator visited a node before its operands');
  return value;
}

/**
 * Every binary node becomes a promise that waits for both operands and then makes one call,
 * so independent subtrees are in flight together: `(1+2)*(3+4)` issues both adds at once.
 */
export function createEvaluator({ arithmetic }: { arithmetic: ArithmeticPort }): Evaluator {
  return {
    async evaluate(expr) {
      // Once one call has failed the answer is that failure, so calls not yet issued would only
      // load the services for nothing; the first failure is also the one reported, whichever
      // branch the rejection happens to reach the root through.
      let failure: { error: unknown } | undefined;
      const call = async (op: ArithmeticOp, a: number, b: number): Promise<number> => {
        if (failure !== undefined) throw failure.error;
        try {
          return await arithmetic.compute(op, a, b);
        } catch (error) {
          failure ??= { error };
          throw error;
        }
      };

      const results = new Map<Expr, Promise<number>>();
      for (const node of postOrder(expr)) {
        if (results.has(node)) continue; // a node shared by two parents is computed once
        let result: Promise<number>;
        if (node.kind === 'num') result = Promise.resolve(node.value);
        else if (node.kind === 'neg') result = lookup(results, node.operand).then(negate);
        else {
          const { op } = node;
          result = Promise.all([lookup(results, node.left), lookup(results, node.right)]).then(([a, b]) => call(op, a, b));
        }
        results.set(node, result);
      }
      try {
        return await lookup(results, expr);
      } catch (error) {
        throw failure !== undefined ? failure.error : error;
      }
    },
  };
}

/**
 * The same semantics with `compute` called in-process and synchronously: the gateway uses it
 * to answer domain errors at once instead of queueing them, and tests use it as an oracle.
 */
export function evaluateLocally(expr: Expr): number {
  const values = new Map<Expr, number>();
  for (const node of postOrder(expr)) {
    if (values.has(node)) continue;
    let value: number;
    if (node.kind === 'num') value = node.value;
    else if (node.kind === 'neg') value = negate(lookup(values, node.operand));
    else value = compute(node.op, lookup(values, node.left), lookup(values, node.right));
    values.set(node, value);
  }
  return lookup(values, expr);
}
