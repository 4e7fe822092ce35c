export { parseExpression, usedOperations, MAX_DEPTH, MAX_EXPRESSION_CHARS, type Expr } from './parser.js';
export { createEvaluator, evaluateLocally, type ArithmeticPort, type Evaluator } from './evaluate.js';
