import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { CalcError, isErrorCode } from '../shared/errors.js';
import { ERROR_CODE_KEY } from '../domain/index.js';

/**
 * The gRPC statuses that mean "the service could not be reached or did not answer in time" and
 * so make the gateway queue the request. Deliberately short: everything else is an answer.
 *  - UNAVAILABLE: connection refused or reset, server shutting down, no ready replica.
 *  - DEADLINE_EXCEEDED: the service is hung, overloaded or partitioned away. Safe to queue
 *    because every calcmesh operation is a pure function: computing it again gives the same answer.
 */
export const UNAVAILABLE_STATUSES: ReadonlySet<GrpcStatus> = new Set([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED]);

/**
 * Where an availability failure comes from, which decides what it means:
 *  - transport: this replica did not answer (refused, reset, timed out): counts against its
 *    circuit, and the call may be tried on another replica;
 *  - peer: the replica answered that a service it needs is down (the evaluator): it is alive;
 *  - circuit: no replica could be called because every circuit is open;
 *  - deadline: the call was never sent, no time was left before the caller's deadline.
 */
export type UnavailableOrigin = 'transport' | 'peer' | 'circuit' | 'deadline';

/** An upstream failure of availability: the caller may queue the request or try another replica. */
export class UpstreamUnavailableError extends CalcError {
  constructor(
    message: string,
    readonly target: string,
    readonly grpcCode: GrpcStatus,
    readonly origin: UnavailableOrigin = 'transport',
  ) {
    super('UNAVAILABLE', message);
    this.name = 'UpstreamUnavailableError';
  }

  /** Did this replica itself fail to answer (and so count against its circuit)? */
  get replicaFailed(): boolean {
    return this.origin === 'transport';
  }
}

export const isUpstreamUnavailable = (error: unknown): error is UpstreamUnavailableError =>
  error instanceof UpstreamUnavailableError;

/**
 * The calcmesh codes a peer may hand on through its trailers: answers about the request. Any
 * other code there (UNAUTHENTICATED, INTERNAL, …) would let a peer speak for the gateway itself.
 */
const PEER_CODES: ReadonlySet<string> = new Set(['INVALID_ARGUMENT', 'DOMAIN_ERROR', 'UPSTREAM_ERROR']);

/** A peer's status message reaches a client's error at most this long (in UTF-16 units). */
export const MAX_DETAILS_LENGTH = 1024;

/** Whatever a peer put in grpc-message, a caller's error carries a bounded slice of it. */
function boundedDetails(details: string | undefined): string {
  const text = String(details ?? '');
  return text.length <= MAX_DETAILS_LENGTH ? text : `${text.slice(0, MAX_DETAILS_LENGTH)}… (${text.length - MAX_DETAILS_LENGTH} more characters cut)`;
}

/** Turns a grpc-js error into the calcmesh error a caller branches on. */
export function fromGrpcError(raw: ServiceError, target: string): CalcError {
  const error = { code: raw.code, details: boundedDetails(raw.details), metadata: raw.metadata };
  const carried = error.metadata?.get(ERROR_CODE_KEY)[0];
  if (UNAVAILABLE_STATUSES.has(error.code)) {
    return new UpstreamUnavailableError(`${target}: ${GrpcStatus[error.code]}: ${error.details}`, target, error.code, carried === 'UNAVAILABLE' ? 'peer' : 'transport');
  }
  if (isErrorCode(carried) && PEER_CODES.has(carried)) return new CalcError(carried, error.details);
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
