/**
 * What an HTTP/2 answer that carries no gRPC status means, as the gRPC over HTTP/2 spec and
 * grpc-js say it: a non-200 HTTP status maps by the spec's "HTTP to gRPC Status Code Mapping"
 * table, and a stream reset maps by its RST_STREAM code as grpc-js maps it (so both transports
 * fail the same way for the same peer).
 */
import http2 from 'node:http2';
import { status as GrpcStatus } from '@grpc/grpc-js';

const C = http2.constants;

export interface WireStatus {
  readonly code: GrpcStatus;
  readonly details: string;
}

export function fromHttpStatus(httpStatus: number): WireStatus {
  const details = `Received HTTP status code ${httpStatus}`;
  switch (httpStatus) {
    case 400:
      return { code: GrpcStatus.INTERNAL, details };
    case 401:
      return { code: GrpcStatus.UNAUTHENTICATED, details };
    case 403:
      return { code: GrpcStatus.PERMISSION_DENIED, details };
    case 404:
      return { code: GrpcStatus.UNIMPLEMENTED, details };
    case 429:
    case 502:
    case 503:
    case 504:
      return { code: GrpcStatus.UNAVAILABLE, details };
    default:
      return { code: GrpcStatus.UNKNOWN, details };
  }
}

/** A stream that closed before a status arrived; `connectionDropped` when its session died under it. */
export function fromRstCode(rstCode: number, httpStatus: number | undefined, connectionDropped: boolean): WireStatus {
  switch (rstCode) {
    case C.NGHTTP2_NO_ERROR:
      if (httpStatus !== undefined && httpStatus !== 200) return fromHttpStatus(httpStatus);
      return { code: GrpcStatus.INTERNAL, details: `Received RST_STREAM with code ${rstCode} (Call ended without gRPC status)` };
    case C.NGHTTP2_REFUSED_STREAM:
      return { code: GrpcStatus.UNAVAILABLE, details: 'Stream refused by server' };
    case C.NGHTTP2_CANCEL:
      // Node reports a dropped connection as CANCEL: that is the peer going away, not a cancellation.
      return connectionDropped ? { code: GrpcStatus.UNAVAILABLE, details: 'Connection dropped' } : { code: GrpcStatus.CANCELLED, details: 'Call cancelled' };
    case C.NGHTTP2_ENHANCE_YOUR_CALM:
      return { code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'Bandwidth exhausted or memory limit exceeded' };
    case C.NGHTTP2_INADEQUATE_SECURITY:
      return { code: GrpcStatus.PERMISSION_DENIED, details: 'Protocol not secure enough' };
    default:
      return { code: GrpcStatus.INTERNAL, details: `Received RST_STREAM with code ${rstCode}` };
  }
}
