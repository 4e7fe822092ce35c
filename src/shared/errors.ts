/**
 * The public error table. Every failure that crosses a process boundary is one of these codes;
 * callers branch on `code`, never on `message`. The HTTP and gRPC status of each code live here and
 * nowhere else (how a peer's HTTP/2 answer maps to a gRPC status is the transport's own table,
 * upstream/h2-status.ts). Tickets carry codes of this table too, never UNAVAILABLE.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

export const ERROR_TABLE = {
  INVALID_ARGUMENT: { http: 400, grpc: GrpcStatus.INVALID_ARGUMENT, summary: 'an operand, operation, expression or body is malformed' },
  DOMAIN_ERROR: { http: 422, grpc: GrpcStatus.FAILED_PRECONDITION, summary: 'division by zero, or a result that is not a finite number' },
  NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, summary: 'unknown route, or an unknown or foreign ticket id' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, summary: 'request body over 16 KiB' },
  URI_TOO_LONG: { http: 414, grpc: GrpcStatus.INVALID_ARGUMENT, summary: 'a URL over 2,048 characters' },
  UNAUTHENTICATED: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED, summary: 'missing or wrong API key' },
  FORBIDDEN: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, summary: 'a valid key without the right: an operator route called with a client key' },
  METHOD_NOT_ALLOWED: { http: 405, grpc: GrpcStatus.UNIMPLEMENTED, summary: 'a known path with a method it does not serve (HEAD of a route with side effects, CONNECT, …)' },
  REQUEST_TIMEOUT: { http: 408, grpc: GrpcStatus.DEADLINE_EXCEEDED, summary: 'the request line and headers did not arrive in time' },
  RATE_LIMITED: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, summary: 'too many requests from this client' },
  CONFLICT: { http: 409, grpc: GrpcStatus.ABORTED, summary: 'an Idempotency-Key reused for a different request' },
  UPSTREAM_ERROR: { http: 502, grpc: GrpcStatus.INTERNAL, summary: 'a service answered with an unexpected gRPC status (a misconfigured target, say)' },
  DEADLINE_EXCEEDED: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, summary: 'on a ticket: the queued request ran out of its time budget while its service was working on it' },
  DEAD_LETTER: { http: 502, grpc: GrpcStatus.INTERNAL, summary: 'on a ticket: the queue gave up on the task after CALC_MAX_DELIVERIES deliveries (each consumer crashed or hung), or could not decode it' },
  UNAVAILABLE: { http: 503, grpc: GrpcStatus.UNAVAILABLE, summary: 'the service and the queue are both unavailable; nothing was accepted' },
  INTERNAL: { http: 500, grpc: GrpcStatus.INTERNAL, summary: 'a bug: never expected for any input' },
} as const;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class CalcError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'CalcError';
    this.code = code;
  }
  get httpStatus(): number {
    return ERROR_TABLE[this.code].http;
  }
  get grpcStatus(): GrpcStatus {
    return ERROR_TABLE[this.code].grpc;
  }
  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export const invalidArgument = (message: string) => new CalcError('INVALID_ARGUMENT', message);
export const domainError = (message: string) => new CalcError('DOMAIN_ERROR', message);
export const notFound = (message: string) => new CalcError('NOT_FOUND', message);
export const unavailable = (message: string) => new CalcError('UNAVAILABLE', message);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_TABLE, value);
}
