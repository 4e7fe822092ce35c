/**
 * What the chaos clients ask, and what the answer must be. The expected outcome of every request
 * is computed here, independently of src/: its own tiny arithmetic (IEEE doubles, the contract's
 * rules: division by zero and non-finite results are DOMAIN_ERROR, -0 reads as 0) and its own
 * expression trees, rendered to text so that the gateway's parser must rebuild the same tree.
 *
 * The mix: valid arithmetic (negative, fractional and exponent operands, some division by zero,
 * some overflow), valid expressions (some dividing by zero inside), and invalid input that must be
 * refused at once with 400 (bad operands, unknown operations, malformed expressions).
 */
import type { Rng } from './rng.js';

export type Expected =
  | { readonly kind: 'value'; readonly value: number }
  | { readonly kind: 'error'; readonly status: number; readonly code: string };

export interface RequestSpec {
  readonly seq: number;
  readonly client: string;
  readonly key: string;
  readonly method: 'GET' | 'POST';
  /** Path and, for POST, the JSON body, exactly as sent. */
  readonly path: string;
  readonly body?: string;
  /** The operation as a ticket names it (`add` … `evaluate`), or the bogus one sent. */
  readonly operation: string;
  /** Operands as the gateway must read them (only for well-formed arithmetic). */
  readonly num1?: number;
  readonly num2?: number;
  readonly expression?: string;
  /** One line a human can read in a violation report. */
  readonly label: string;
  readonly expect: Expected;
}

export const ARITHMETIC = ['add', 'subtract', 'multiply', 'divide'] as const;
export type Arithmetic = (typeof ARITHMETIC)[number];

const SYMBOL: Record<Arithmetic, string> = { add: '+', subtract: '-', multiply: '*', divide: '/' };
const PRECEDENCE: Record<Arithmetic, number> = { add: 1, subtract: 1, multiply: 2, divide: 2 };

const DOMAIN: Expected = { kind: 'error', status: 422, code: 'DOMAIN_ERROR' };
const INVALID: Expected = { kind: 'error', status: 400, code: 'INVALID_ARGUMENT' };

/** The reference arithmetic: one binary step, as the contract defines it. */
export function referenceStep(op: Arithmetic, a: number, b: number): number | 'domain' {
  if (op === 'divide' && b === 0) return 'domain';
  const value = op === 'add' ? a + b : op === 'subtract' ? a - b : op === 'multiply' ? a * b : a / b;
  if (!Number.isFinite(value)) return 'domain';
  return value === 0 ? 0 : value;
}

export type Tree =
  | { readonly kind: 'num'; readonly text: string }
  | { readonly kind: 'neg'; readonly operand: Tree }
  | { readonly kind: 'bin'; readonly op: Arithmetic; readonly left: Tree; readonly right: Tree };

/** Evaluates a tree bottom-up with the reference step; any failing step makes the whole a domain error. */
export function referenceValue(tree: Tree): number | 'domain' {
  switch (tree.kind) {
    case 'num':
      return Number(tree.text);
    case 'neg': {
      const value = referenceValue(tree.operand);
      return value === 'domain' ? value : value === 0 ? 0 : -value;
    }
    case 'bin': {
      const left = referenceValue(tree.left);
      const right = referenceValue(tree.right);
      if (left === 'domain' || right === 'domain') return 'domain';
      return referenceStep(tree.op, left, right);
    }
  }
}

/**
 * Text whose parse is exactly `tree`: a binary child is parenthesized when it binds looser than
 * its parent, or as tightly on the right (the grammar is left-associative); a negated compound
 * is parenthesized. Spaces are sprinkled in where the grammar allows them.
 */
export function render(tree: Tree, rng: Rng): string {
  const space = () => (rng.chance(0.3) ? ' ' : '');
  switch (tree.kind) {
    case 'num':
      return tree.text;
    case 'neg':
      return `-${space()}${tree.operand.kind === 'num' ? tree.operand.text : `(${render(tree.operand, rng)})`}`;
    case 'bin': {
      const wrap = (child: Tree, right: boolean) => {
        const text = render(child, rng);
        if (child.kind !== 'bin') return text;
        const looser = PRECEDENCE[child.op] < PRECEDENCE[tree.op] || (right && PRECEDENCE[child.op] === PRECEDENCE[tree.op]);
        return looser || rng.chance(0.15) ? `(${space()}${text}${space()})` : text;
      };
      return `${wrap(tree.left, false)}${space()}${SYMBOL[tree.op]}${space()}${wrap(tree.right, true)}`;
    }
  }
}

/** Operand text in the forms the contract accepts: `-12`, `3.25`, `.5`, `7.`, `2.5e-3`, `+4`. */
export function operandText(rng: Rng): string {
  const sign = rng.chance(0.4) ? '-' : rng.chance(0.05) ? '+' : '';
  switch (rng.int(0, 9)) {
    case 0:
      return `${sign}.${rng.int(1, 999)}`;
    case 1:
      return `${sign}${rng.int(0, 99)}.`;
    case 2:
      return `${sign}${rng.int(1, 99)}.${rng.int(0, 99)}e${rng.pick(['', '-', '+'])}${rng.int(0, 12)}`;
    case 3:
    case 4:
    case 5:
      return `${sign}${rng.int(0, 100_000)}.${String(rng.int(0, 999)).padStart(3, '0')}`;
    default:
      return `${sign}${rng.int(0, 1000)}`;
  }
}

// Not `.` alone: a URL client resolves a `.` path segment (even as %2E) before sending it.
const BAD_OPERANDS = ['abc', 'NaN', 'Infinity', '-Infinity', '1e999', '0x1A', '1,5', '1_000', '--1', '1e', '+-2', '1.2.3', '%201', 'null', '.e1'];
const BAD_OPERATIONS = ['power', 'mod', 'ADD', 'sqrt', 'addition', 'div'];
const BAD_EXPRESSIONS = ['1+', '(2*3', '2**3', '', 'abc', '1 2', '()', '4/', '3..2', '4 % 2', '2*(3+)', ')1(', '1e999+1', '++', '7 -* 2'];

function literalText(rng: Rng): string {
  switch (rng.int(0, 7)) {
    case 0:
      return '0';
    case 1:
      return `${rng.int(0, 9)}.${rng.int(0, 99)}`;
    case 2:
      return `.${rng.int(1, 9)}`;
    case 3:
      return `${rng.int(1, 9)}e${rng.int(0, 3)}`;
    default:
      return String(rng.int(1, 50));
  }
}

function randomTree(rng: Rng, depth: number): Tree {
  if (depth === 0 || rng.chance(0.3)) {
    const leaf: Tree = { kind: 'num', text: literalText(rng) };
    return rng.chance(0.15) ? { kind: 'neg', operand: leaf } : leaf;
  }
  const op = rng.pick(ARITHMETIC);
  const left = randomTree(rng, depth - 1);
  // Now and then a divisor that is zero only once computed: `x / (3 - 3)`.
  const right = op === 'divide' && rng.chance(0.12)
    ? (() => { const n: Tree = { kind: 'num', text: String(rng.int(1, 9)) }; return { kind: 'bin', op: 'subtract', left: n, right: n } as Tree; })()
    : randomTree(rng, depth - 1);
  const node: Tree = { kind: 'bin', op, left, right };
  return rng.chance(0.1) ? { kind: 'neg', operand: node } : node;
}

export interface WorkloadMix {
  /** Shares of valid arithmetic, valid expressions, slow expressions and invalid input (the rest). */
  readonly arithmetic: number;
  readonly expressions: number;
  /** Long chains of additions: with a slow add service, they take longer than a lease. */
  readonly slow?: number;
}

export const DEFAULT_MIX: WorkloadMix = { arithmetic: 0.55, expressions: 0.29, slow: 0.03 };

/** Additions in one slow expression: each one call to add, one after the other. */
export const SLOW_TERMS = { min: 16, max: 24 };

/** The next request of one client. `key` must be unique across the run (it is the Idempotency-Key). */
export function nextRequest(rng: Rng, client: string, seq: number, key: string, mix: WorkloadMix = DEFAULT_MIX): RequestSpec {
  const roll = rng.next();
  const base = { seq, client, key };
  if (roll < mix.arithmetic) return arithmeticRequest(rng, base);
  if (roll < mix.arithmetic + mix.expressions) return expressionRequest(rng, base, randomTree(rng, rng.int(1, 3)));
  if (roll < mix.arithmetic + mix.expressions + (mix.slow ?? 0)) return slowRequest(rng, base);
  return invalidRequest(rng, base);
}

type Base = Pick<RequestSpec, 'seq' | 'client' | 'key'>;

function arithmeticRequest(rng: Rng, base: Base): RequestSpec {
  const op = rng.pick(ARITHMETIC);
  let a = operandText(rng);
  let b = operandText(rng);
  if (op === 'divide' && rng.chance(0.1)) b = rng.pick(['0', '-0', '0.000', '0e5']);
  if (op === 'multiply' && rng.chance(0.03)) [a, b] = ['1e200', '-1e200'];
  const num1 = Number(a);
  const num2 = Number(b);
  const value = referenceStep(op, num1, num2);
  return {
    ...base,
    method: 'GET',
    path: `/${op}/${encodeURIComponent(a)}/${encodeURIComponent(b)}`,
    operation: op,
    num1,
    num2,
    label: `${op} ${a} ${b}`,
    expect: value === 'domain' ? DOMAIN : { kind: 'value', value },
  };
}

function expressionRequest(rng: Rng, base: Base, tree: Tree): RequestSpec {
  const expression = render(tree, rng);
  const value = referenceValue(tree);
  return { ...evaluatePost(base, expression, ''), expression, expect: value === 'domain' ? DOMAIN : { kind: 'value', value } };
}

/** `1+2+…`: a left-deep chain of additions of small integers (exact in doubles). */
function slowRequest(rng: Rng, base: Base): RequestSpec {
  let tree: Tree = { kind: 'num', text: String(rng.int(1, 50)) };
  for (let i = rng.int(SLOW_TERMS.min, SLOW_TERMS.max); i > 0; i--) tree = { kind: 'bin', op: 'add', left: tree, right: { kind: 'num', text: String(rng.int(1, 50)) } };
  const spec = expressionRequest(rng, base, tree);
  return { ...spec, label: `${spec.label} (slow)` };
}

/** `POST /v1/evaluate` of one expression; `note` goes into the label. */
function evaluatePost(base: Base, expression: string, note: string) {
  return {
    ...base,
    method: 'POST',
    path: '/v1/evaluate',
    body: JSON.stringify({ expression }),
    operation: 'evaluate',
    label: `evaluate ${JSON.stringify(expression)}${note}`,
  } as const;
}

function invalidRequest(rng: Rng, base: Base): RequestSpec {
  const roll = rng.int(0, 9);
  if (roll < 4) {
    const op = rng.pick(ARITHMETIC);
    const good = operandText(rng);
    const bad = rng.pick(BAD_OPERANDS);
    const [a, b] = rng.chance(0.5) ? [bad, good] : [good, bad];
    // `%201` is sent as written: a space before the 1 once decoded.
    const enc = (text: string) => (text === bad && bad.includes('%') ? text : encodeURIComponent(text));
    return { ...base, method: 'GET', path: `/${op}/${enc(a)}/${enc(b)}`, operation: op, label: `${op} ${a} ${b} (bad operand)`, expect: INVALID };
  }
  if (roll < 6) {
    const op = rng.pick(BAD_OPERATIONS);
    const [a, b] = [operandText(rng), operandText(rng)];
    return { ...base, method: 'GET', path: `/${op}/${encodeURIComponent(a)}/${encodeURIComponent(b)}`, operation: op, label: `${op} ${a} ${b} (unknown operation)`, expect: INVALID };
  }
  if (roll < 9) {
    return { ...evaluatePost(base, rng.pick(BAD_EXPRESSIONS), ' (malformed)'), expect: INVALID };
  }
  const body = rng.pick(['{"expression":42}', '{"expr":"1+1"}', '{"expression":"1+1"', '[]']);
  return { ...base, method: 'POST', path: '/v1/evaluate', body, operation: 'evaluate', label: `evaluate body ${body} (malformed body)`, expect: INVALID };
}
