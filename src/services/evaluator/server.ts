import type { ServerCredentials, ServiceDefinition } from '@grpc/grpc-js';
import type { Logger } from '../../shared/logger.js';
import type { ArithmeticOp } from '../../shared/operations.js';
import { EVALUATOR_SERVICE, loadProto, type EvaluateRequest, type EvaluateResponse } from '../../shared/proto.js';
import type { Upstreams } from '../../upstream/index.js';
import { createServiceHost, unary, type CallObserver, type ServiceHost } from '../grpc-host.js';
import { createEvaluator, parseExpression } from '../../domain/index.js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { CalcError } from '../../shared/errors.js';
import { createStreamMount, EVALUATOR_STREAM_PATH, StatusError } from '../stream-host.js';
import type { TraceContext } from '../../shared/tracing.js';

export interface EvaluatorDeps {
  readonly upstreams: Upstreams;
  readonly logger: Logger;
  /** Deadline for a call that arrives without one. */
  readonly deadlineMs: number;
  /** Calls of one expression in flight at once (CALC_EVAL_MAX_INFLIGHT, default 64). */
  readonly maxInflight?: number;
  readonly observe?: CallObserver;
  readonly credentials?: ServerCredentials;
}

/**
 * Computes one expression through the arithmetic services: each binary node is one gRPC call,
 * under the caller's own deadline and request id, so the whole tree can be followed in the logs.
 */
export function evaluateExpression(
  deps: EvaluatorDeps,
  expression: string,
  // `cancelled` (a Stream call's context) turns true when the caller withdraws the call.
  context: { requestId: string; deadline: number; readonly cancelled?: boolean } & TraceContext,
  budgetMs = deps.deadlineMs,
) {
  const tree = parseExpression(expression);
  const now = Date.now();
  const callerLeft = context.deadline - now;
  // Keep a slice of the caller's time for the way back, so that "a service I need is down"
  // reaches the caller as this evaluator's UNAVAILABLE answer, not as the caller's own
  // DEADLINE_EXCEEDED (which would count against this evaluator's circuit).
  const deadline = Math.min(context.deadline - Math.min(100, callerLeft * 0.1), now + budgetMs);
  // The calls share the expression's deadline: running out of it is the expression's, not a replica's failure.
  const options = { deadline, requestId: context.requestId, sharedDeadline: true, traceparent: context.traceparent, tracestate: context.tracestate };
  const { upstreams } = deps;
  const evaluator = createEvaluator({
    maxInflight: deps.maxInflight ?? 64,
    arithmetic: {
      // A withdrawn call (its caller cancelled it) makes no further calls.
      compute: (op: ArithmeticOp, a: number, b: number) =>
        context.cancelled ? Promise.reject(new CalcError('UPSTREAM_ERROR', 'the caller withdrew the call')) : upstreams.arithmetic(op, a, b, options),
    },
  });
  return evaluator.evaluate(tree);
}

export function buildEvaluatorServer(deps: EvaluatorDeps): ServiceHost {
  const stream = createStreamMount({
    path: EVALUATOR_STREAM_PATH,
    handle: (call, context) => {
      if (call.method !== 'Evaluate') throw new StatusError(GrpcStatus.UNIMPLEMENTED, `${call.method || 'an empty method'} is not served here; this is the evaluate service`);
      return evaluateExpression(deps, call.expression, context);
    },
    logger: deps.logger,
    observe: deps.observe,
  });
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
    stream,
  });
}
