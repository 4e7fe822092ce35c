/**
 * The expression language of the evaluator: pure, no I/O.
 *
 *   expression := term (('+' | '-') term)*
 *   term       := factor (('*' | '/') factor)*
 *   factor     := ('+' | '-')* primary
 *   primary    := number | '(' expression ')'
 *   number     := digits ['.' digits?] | '.' digits, then optionally [eE] [+-]? digits
 *
 * Whitespace (space, tab, CR, LF) may sit between any two tokens; other Unicode spaces are
 * rejected so nothing invisible can hide inside an expression. `1.` is accepted because the
 * operands of `GET /{op}/{a}/{b}` accept it too. A literal that overflows to Infinity is
 * INVALID_ARGUMENT (the user wrote it); one that underflows to 0 is accepted, as Number() does.
 *
 * Limits: at most MAX_EXPRESSION_CHARS UTF-16 code units, and a nesting depth of MAX_DEPTH,
 * where depth counts the open parentheses plus the unary signs enclosing a point: `-(-(1))`
 * has depth 4. Binary chains such as `1+1+1+…` are loops, not nesting, so they count nothing.
 * The parser recurses only per parenthesis, so MAX_DEPTH bounds its stack; the AST can still
 * be about 2,000 levels deep (a long `+` chain), which is why the evaluators do not recurse.
 *
 * Every error is INVALID_ARGUMENT and names a 1-based position (in UTF-16 code units) in the
 * form `at position N`, so a client can point at the problem.
 */
import { invalidArgument } from '../shared/errors.js';
import type { ArithmeticOp } from '../shared/operations.js';

export type Expr =
  | { kind: 'num'; value: number }
  | { kind: 'neg'; operand: Expr }
  | { kind: 'bin'; op: ArithmeticOp; left: Expr; right: Expr };

export const MAX_EXPRESSION_CHARS = 4096;
export const MAX_DEPTH = 64;

const enum Char {
  Tab = 9,
  LineFeed = 10,
  CarriageReturn = 13,
  Space = 32,
  Open = 40,
  Close = 41,
  Star = 42,
  Plus = 43,
  Minus = 45,
  Dot = 46,
  Slash = 47,
  Zero = 48,
  Nine = 57,
  UpperE = 69,
  LowerE = 101,
}

const isDigit = (code: number) => code >= Char.Zero && code <= Char.Nine;

/** The operators of each precedence level, by character code (a sparse array: anything else is undefined). */
const SUM_OPS: Readonly<Record<number, ArithmeticOp>> = { [Char.Plus]: 'add', [Char.Minus]: 'subtract' };
const PRODUCT_OPS: Readonly<Record<number, ArithmeticOp>> = { [Char.Star]: 'multiply', [Char.Slash]: 'divide' };

export function parseExpression(input: unknown): Expr {
  // A non-string has no position to point at; the message names what arrived instead.
  if (typeof input !== 'string') {
    throw invalidArgument(`expression must be a string, got ${input === null ? 'null' : Array.isArray(input) ? 'array' : typeof input}`);
  }
  if (input.length > MAX_EXPRESSION_CHARS) {
    throw invalidArgument(`expression longer than ${MAX_EXPRESSION_CHARS} characters at position ${MAX_EXPRESSION_CHARS + 1}`);
  }
  return new Parser(input).parse();
}

/**
 * A recursive-descent parser over character codes: it runs twice per expression on the hot path
 * (the gateway checks what the evaluator then computes), so it allocates nothing but the nodes.
 */
class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly src: string) {}

  parse(): Expr {
    const expr = this.expression();
    this.skipWhitespace();
    if (this.pos < this.src.length) throw this.unexpected('an operator');
    return expr;
  }

  private expression(): Expr {
    return this.chain(false);
  }

  /**
   * A chain of sums (`product` false) or of products: a loop rather than recursion, so left
   * associativity falls out and long chains cost no stack.
   */
  private chain(product: boolean): Expr {
    let left = product ? this.factor() : this.chain(true);
    for (;;) {
      this.skipWhitespace();
      const op = product ? PRODUCT_OPS[this.src.charCodeAt(this.pos)] : SUM_OPS[this.src.charCodeAt(this.pos)];
      if (op === undefined) return left;
      this.pos++;
      left = { kind: 'bin', op, left, right: product ? this.factor() : this.chain(true) };
    }
  }

  private factor(): Expr {
    let negations = 0;
    let signs = 0;
    for (;;) {
      this.skipWhitespace();
      const ch = this.src.charCodeAt(this.pos);
      if (ch !== Char.Minus && ch !== Char.Plus) break;
      this.enter();
      signs++;
      if (ch === Char.Minus) negations++;
      this.pos++;
    }
    let expr = this.primary();
    this.depth -= signs;
    // Unary plus leaves no node; each minus stays a node so the AST mirrors the text.
    for (let i = 0; i < negations; i++) expr = { kind: 'neg', operand: expr };
    return expr;
  }

  private primary(): Expr {
    this.skipWhitespace();
    if (this.src.charCodeAt(this.pos) === Char.Open) {
      const open = this.pos;
      this.enter();
      this.pos++;
      const inner = this.expression();
      this.skipWhitespace();
      if (this.src.charCodeAt(this.pos) !== Char.Close) throw this.unexpected(`an operator or ')' to close '(' at position ${open + 1}`);
      this.pos++;
      this.depth--;
      return inner;
    }
    const end = this.numberEnd();
    if (end === this.pos) throw this.unexpected("a number, '(' or a sign");
    const literal = this.src.slice(this.pos, end);
    const value = Number(literal);
    if (!Number.isFinite(value)) {
      throw invalidArgument(`number ${quote(literal)} at position ${this.pos + 1} is out of range`);
    }
    this.pos = end;
    return { kind: 'num', value };
  }

  /** Where the number literal at `pos` ends (`pos` itself when there is none): digits ['.' digits?] | '.' digits, then [eE] [+-]? digits. */
  private numberEnd(): number {
    const src = this.src;
    let at = this.pos;
    while (isDigit(src.charCodeAt(at))) at++;
    const whole = at > this.pos;
    if (src.charCodeAt(at) === Char.Dot) {
      let fraction = at + 1;
      while (isDigit(src.charCodeAt(fraction))) fraction++;
      if (whole || fraction > at + 1) at = fraction;
    }
    if (at === this.pos) return at;
    const e = src.charCodeAt(at);
    if (e === Char.LowerE || e === Char.UpperE) {
      let exponent = at + 1;
      const sign = src.charCodeAt(exponent);
      if (sign === Char.Plus || sign === Char.Minus) exponent++;
      const digits = exponent;
      while (isDigit(src.charCodeAt(exponent))) exponent++;
      if (exponent > digits) at = exponent;
    }
    return at;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) {
      throw invalidArgument(`nesting deeper than ${MAX_DEPTH} at position ${this.pos + 1}`);
    }
  }

  private skipWhitespace(): void {
    for (;;) {
      const ch = this.src.charCodeAt(this.pos);
      if (ch !== Char.Space && ch !== Char.Tab && ch !== Char.LineFeed && ch !== Char.CarriageReturn) return;
      this.pos++;
    }
  }

  private unexpected(expected: string) {
    const found = this.pos < this.src.length ? describeChar(this.src, this.pos) : 'end of expression';
    return invalidArgument(`unexpected ${found} at position ${this.pos + 1}, expected ${expected}`);
  }
}

function describeChar(src: string, index: number): string {
  const ch = String.fromCodePoint(src.codePointAt(index) ?? 0);
  // Control and space characters would be invisible or break the message's line.
  if (/^[\p{C}\p{Z}]$/u.test(ch)) return `character U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
  return quote(ch);
}

const quote = (text: string) => `'${text.length > 24 ? `${text.slice(0, 24)}…` : text}'`;

/** Which arithmetic services an expression needs. Negation is done locally and needs none. */
export function usedOperations(expr: Expr): Set<ArithmeticOp> {
  const ops = new Set<ArithmeticOp>();
  for (const node of postOrder(expr)) if (node.kind === 'bin') ops.add(node.op);
  return ops;
}

/**
 * Every node, children before parents, without recursion: the AST of a long `+` chain is
 * thousands of levels deep, and trees built by hand have no depth limit at all.
 */
export function postOrder(root: Expr): Expr[] {
  const order: Expr[] = [];
  const stack: Expr[] = [root];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    order.push(node);
    if (node.kind === 'neg') stack.push(node.operand);
    else if (node.kind === 'bin') stack.push(node.left, node.right);
  }
  return order.reverse();
}
