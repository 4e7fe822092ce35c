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

export interface EvaluatorOptions {
  readonly arithmetic: ArithmeticPort;
  /**
   * Calls of one expression in flight at once (default: no limit): a 1,000-operation expression
   * whose operands are all ready would otherwise put 1,000 calls on the services at once.
   * Calls beyond it wait their turn in the order they became ready.
   */
  readonly maxInflight?: number;
}

const negate = (value: number) => (value === 0 ? 0 : -value);

function lookup<T>(values: Map<Expr, T>, node: Expr): T {
  const value = values.get(node);
  if (value === undefined) throw new CalcError('INTERNAL', 'evaluator visited a node before its operands');
  return value;
}

/**
 * The nodes of an expression numbered children first (the root last), each once even when a
 * hand-built tree shares it, with its operands' numbers: `left` is a negation's operand.
 */
function plan(expr: Expr) {
  const index = new Map<Expr, number>();
  const nodes: Expr[] = [];
  for (const node of postOrder(expr)) {
    if (index.has(node)) continue;
    index.set(node, nodes.length);
    nodes.push(node);
  }
  const left = new Array<number>(nodes.length).fill(0);
  const right = new Array<number>(nodes.length).fill(0);
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    if (node.kind === 'neg') left[i] = index.get(node.operand)!;
    else if (node.kind === 'bin') {
      left[i] = index.get(node.left)!;
      right[i] = index.get(node.right)!;
    }
  }
  return { nodes, left, right };
}

/**
 * A binary node is called as soon as both its operands are known, so independent subtrees are in
 * flight together: `(1+2)*(3+4)` issues both adds at once. The evaluation is one small scheduler
 * over the numbered nodes (operands still missing per node, a queue of calls ready to go, one
 * reaction per call) rather than a chain of promises per node, which cost several times more.
 */
export function createEvaluator({ arithmetic, maxInflight = Infinity }: EvaluatorOptions): Evaluator {
  return {
    evaluate(expr) {
      const { nodes, left, right } = plan(expr);
      const root = nodes.length - 1;
      // Plain arrays: a small typed array costs ~300 ns to allocate, more than the whole plan.
      const values = new Array<number>(nodes.length).fill(0);
      const missing = new Array<number>(nodes.length).fill(0);
      // Who waits for each node; a node with several parents (hand-built trees) keeps the others in `more`.
      const parent = new Array<number>(nodes.length).fill(-1);
      let more: Map<number, number[]> | undefined;
      const waitsFor = (child: number, p: number) => {
        missing[p]!++;
        if (parent[child] === -1) parent[child] = p;
        else {
          more ??= new Map();
          const list = more.get(child);
          if (list) list.push(p);
          else more.set(child, [p]);
        }
      };
      for (let i = 0; i < nodes.length; i++) {
        const kind = nodes[i]!.kind;
        if (kind === 'neg') waitsFor(left[i]!, i);
        else if (kind === 'bin') {
          waitsFor(left[i]!, i);
          waitsFor(right[i]!, i);
        }
      }

      return new Promise<number>((resolve, reject) => {
        const ready: number[] = [];
        let next = 0;
        let inflight = 0;
        let failed = false;

        // A node's value, and what it makes ready; negations are done here, in a loop, not as calls.
        const known = (node: number, value: number) => {
          values[node] = value;
          const stack = [node];
          for (let i = stack.pop(); i !== undefined; i = stack.pop()) {
            if (i === root) return resolve(values[i]!);
            const others = more?.get(i);
            for (let k = -1; k < (others?.length ?? 0); k++) {
              const p = k < 0 ? parent[i]! : others![k]!;
              if (--missing[p]! !== 0) continue;
              if (nodes[p]!.kind === 'neg') {
                values[p] = negate(values[i]!);
                stack.push(p);
              } else ready.push(p);
            }
          }
        };

        // Once one call has failed the answer is that failure: calls not yet made would only load
        // the services for nothing, and the first failure is the one reported.
        const refused = (error: unknown) => {
          inflight--;
          if (failed) return;
          failed = true;
          reject(error);
        };
        const answered = (node: number) => (value: number) => {
          inflight--;
          if (failed) return;
          known(node, value);
          issue();
        };

        const issue = () => {
          while (inflight < maxInflight && next < ready.length && !failed) {
            const i = ready[next++]!;
            inflight++;
            let call: Promise<number>;
            try {
              call = arithmetic.compute((nodes[i] as BinaryNode).op, values[left[i]!]!, values[right[i]!]!);
            } catch (error) {
              call = Promise.reject(error);
            }
            call.then(answered(i), refused);
          }
        };

        for (let i = 0; i < nodes.length; i++) {
          const node = nodes[i]!;
          if (node.kind === 'num') known(i, node.value);
        }
        issue();
      });
    },
  };
}

type BinaryNode = Extract<Expr, { kind: 'bin' }>;

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
