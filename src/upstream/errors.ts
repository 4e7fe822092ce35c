import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { CalcError, isErrorCode } from '../shared/errors.js';
import { ERROR_CODE_KEY } from '../services/grpc-host.js';

/**
 * The gRPC statuses that mean "the service could not be reached or did not answer in time" and
 * so make the gateway queue the request. Deliberately short: everything else is an answer.
 *  - UNAVAILABLE: connection refused or reset, server shutting down, no ready replica.
 *  - DEADLINE_EXCEEDED: the service is hung, overloaded or partitioned away. Safe to queue
 *    because every calcmesh operation is a pure function: computing it again gives the same answer.
 */
export const UNAVAILABLE_STATUSES: ReadonlySet<GrpcStatus> = new Set([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED]);

/** An upstream failure of availability: the caller may queue the request or try another replica. */
export class UpstreamUnavailableError extends CalcError {
  constructor(
    message: string,
    readonly target: string,
    readonly grpcCode: GrpcStatus,
    /**
     * The peer itself answered that something it needs is unavailable (the evaluator, when an
     * arithmetic service is down): the request still goes to the queue, but the peer is alive,
     * so this counts neither against its circuit nor as a reason to try another replica.
     */
    readonly peerAnswered = false,
  ) {
    super('UNAVAILABLE', message);
    this.name = 'UpstreamUnavailableError';
  }
}

export const isUpstreamUnavailable = (error: unknown): error is UpstreamUnavailableError =>
  error instanceof UpstreamUnavailableError;

/** Turns a grpc-js error into the calcmesh error a caller branches on. */
export function fromGrpcError(error: ServiceError, target: string): CalcError {
  const carried = error.metadata?.get(ERROR_CODE_KEY)[0];
  if (UNAVAILABLE_STATUSES.has(error.code)) {
    return new UpstreamUnavailableError(`${target}: ${GrpcStatus[error.code]}: ${error.details}`, target, error.code, carried === 'UNAVAILABLE');
  }
  if (isErrorCode(carried) && carried !== 'UNAVAILABLE') return new CalcError(carried, error.details);
  switch (error.code) {
    case GrpcStatus.INVALID_ARGUMENT:
      return new CalcError('INVALID_ARGUMENT', error.details);
    case GrpcStatus.FAILED_PRECONDITION:
    case GrpcStatus.OUT_OF_RANGE:
      return new CalcError('DOMAIN_ERROR', error.details);
    default:
      return new CalcError('UPSTREAM_ERROR', `${target} answered ${GrpcStatus[error.code] ?? error.code}: ${error.details}`);
  }
}
