import { domainError, invalidArgument } from '../shared/errors.js';
import type { ArithmeticOp } from '../shared/operations.js';

/** The arithmetic itself: pure, no I/O. Throws DOMAIN_ERROR where the answer is not a finite number. */
export function compute(op: ArithmeticOp, a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw invalidArgument('operands must be finite numbers');
  let result: number;
  switch (op) {
    case 'add': result = a + b; break;
    case 'subtract': result = a - b; break;
    case 'multiply': result = a * b; break;
    case 'divide':
      if (b === 0) throw domainError('division by zero');
      result = a / b;
      break;
  }
  if (!Number.isFinite(result)) throw domainError(`the result of ${op}(${a}, ${b}) is not a finite number`);
  // -0 carries no meaning for a calculator and reads oddly in JSON clients.
  return result === 0 ? 0 : result;
}
