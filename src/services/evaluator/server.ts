import type { ServerCredentials, ServiceDefinition } from '@grpc/grpc-js';
import type { Logger } from '../../shared/logger.js';
import type { ArithmeticOp } from '../../shared/operations.js';
import { EVALUATOR_SERVICE, loadProto, type EvaluateRequest, type EvaluateResponse } from '../../shared/proto.js';
import type { Upstreams } from '../../upstream/index.js';
import { createServiceHost, unary, type CallObserver, type ServiceHost } from '../grpc-host.js';
import { createEvaluator } from './evaluate.js';
import { parseExpression } from './parser.js';

export interface EvaluatorDeps {
  readonly upstreams: Upstreams;
  readonly logger: Logger;
  /** Deadline for a call that arrives without one. */
  readonly deadlineMs: number;
  readonly observe?: CallObserver;
  readonly credentials?: ServerCredentials;
}

/**
 * Computes one expression through the arithmetic services: each binary node is one gRPC call,
 * under the caller's own deadline and request id, so the whole tree can be followed in the logs.
 */
export function evaluateExpression(deps: EvaluatorDeps, expression: string, context: { requestId: string; deadline: number }) {
  const tree = parseExpression(expression);
  const deadline = Math.min(context.deadline, Date.now() + deps.deadlineMs);
  const evaluator = createEvaluator({
    arithmetic: {
      compute: (op: ArithmeticOp, a: number, b: number) =>
        deps.upstreams.arithmetic(op, a, b, { deadline, requestId: context.requestId }),
    },
  });
  return evaluator.evaluate(tree);
}

export function buildEvaluatorServer(deps: EvaluatorDeps): ServiceHost {
  return createServiceHost({
    serviceName: EVALUATOR_SERVICE,
    definition: loadProto().Evaluator.service as ServiceDefinition,
    implementation: {
      Evaluate: unary<EvaluateRequest, EvaluateResponse>(
        'Evaluate',
        async (request, context) => ({ result: await evaluateExpression(deps, request.expression, context) }),
        deps.logger,
        deps.observe,
      ),
    },
    logger: deps.logger,
    credentials: deps.credentials,
  });
}
