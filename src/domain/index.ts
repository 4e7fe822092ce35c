/** Pure domain code every role shares: no I/O, no gRPC, no environment. */
export { compute } from './compute.js';
export { parseOperand } from './operands.js';
export { parseExpression, usedOperations, MAX_DEPTH, MAX_EXPRESSION_CHARS, type Expr } from './parser.js';
export { createEvaluator, evaluateLocally, type ArithmeticPort, type Evaluator } from './evaluate.js';
export { ERROR_CODE_KEY, REQUEST_ID_KEY } from './wire.js';
