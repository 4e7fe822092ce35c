/**
 * A lean gRPC unary client over node:http2, for the hot path (the gateway's and the evaluator's
 * calls). It speaks the gRPC HTTP/2 protocol as grpc-js does: `grpc-timeout` carries the
 * deadline to the server, metadata travel as headers, the status and message come back in the
 * trailers (or in a trailers-only answer), HTTP/2 does the flow control, and a session that
 * receives GOAWAY or closes is replaced by a new one for the next call. It skips what a unary
 * call with a fixed message does not need: per-call objects, interceptors, name resolution.
 * Health probes and Watch stay on grpc-js.
 *
 * It trusts nothing a peer sends: one response message of at most `maxMessageBytes` is read
 * (ResponseReader), a non-gRPC content-type or HTTP status and a stream reset map as the spec
 * and grpc-js map them (h2-status.ts), and grpc-message reaches an error decoded and bounded.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { RPC_NAMES } from '../shared/operations.js';
import { ERROR_CODE_KEY, REQUEST_ID_KEY } from '../domain/index.js';
import type { CallOptions, TargetClient } from './client.js';
import { decodeResult, DEFAULT_MAX_MESSAGE_BYTES, frameEvaluateRequest, frameOperationRequest } from './codec.js';
import { fromGrpcError, UpstreamUnavailableError } from './errors.js';
import { fromHttpStatus, fromRstCode } from './h2-status.js';
import { ResponseReader } from './response-reader.js';
import { percentDecoded, probe } from './h2-session.js';


export interface H2Tls {
  readonly ca?: Buffer | null;
  readonly cert?: Buffer | null;
  readonly key?: Buffer | null;
}

const { NGHTTP2_CANCEL } = http2.constants;
const USER_AGENT = 'calcmesh-h2/1';
/** After a failed connect, calls fail at once for this long instead of each dialing again. */
const RECONNECT_PAUSE_MS = 100;
/** HTTP/2 PING keepalive, as grpc-js is configured (CHANNEL_OPTIONS): a peer that vanished is noticed. */
const KEEPALIVE_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;
/** After a call missed its deadline, a quicker PING tells a dead connection from a slow peer. */
const SUSPECT_TIMEOUT_MS = 1_000;



export interface H2ClientOptions {
  /** The largest response message accepted (CALC_GRPC_MAX_MESSAGE_BYTES); a larger one is RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes?: number;
}

const isGrpcContentType = (value: unknown) => typeof value === 'string' && /^application\/grpc(\+proto)?(;|$)/i.test(value);

/** Sessions that ended in an error: their streams failed because the connection did. */
const broken = new WeakSet<ClientHttp2Session>();

/** Streams left in a session before it is replaced: HTTP/2 stream ids are odd 31-bit numbers and never reused. */
const STREAM_ID_RESERVE = 1024;

export function createH2TargetClient(target: string, tls?: H2Tls, clientOptions: H2ClientOptions = {}): TargetClient {
  const authority = `${tls ? 'https' : 'http'}://${target}`;
  const maxMessageBytes = clientOptions.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  let session: ClientHttp2Session | undefined;
  let failedAt = 0;

  /** New calls go to a new session; this one finishes what it carries and closes. */
  const retire = (old: ClientHttp2Session | undefined) => {
    if (!old) return;
    if (session === old) session = undefined;
    if (!old.closed && !old.destroyed) old.close();
  };

  const connect = (): ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) {
      const nextId = session.state.nextStreamID ?? 0;
      if (nextId < 2 ** 31 - 1 - 2 * STREAM_ID_RESERVE) return session;
      retire(session);
    }
    const options: SecureClientSessionOptions = { settings: { enablePush: false } };
    if (tls) Object.assign(options, { ca: tls.ca ?? undefined, cert: tls.cert ?? undefined, key: tls.key ?? undefined });
    const created = http2.connect(authority, options);
    const forget = () => {
      if (session === created) session = undefined;
    };
    created.on('error', () => {
      broken.add(created);
      failedAt = Date.now();
      forget();
    });
    created.on('goaway', forget); // in-flight streams finish; new calls use a new session
    const keepalive = setInterval(() => probe(created, KEEPALIVE_TIMEOUT_MS), KEEPALIVE_MS);
    keepalive.unref();
    created.on('close', () => {
      clearInterval(keepalive);
      forget();
    });
    created.unref(); // an idle connection never keeps the process alive
    session = created;
    return created;
  };

  const call = (method: string, frame: Buffer, options: CallOptions) =>
    new Promise<number>((resolve, reject) => {
      const remaining = options.deadline - Date.now();
      if (remaining <= 0) {
        reject(new UpstreamUnavailableError(`${target}: no time left before the deadline`, target, GrpcStatus.DEADLINE_EXCEEDED, 'deadline'));
        return;
      }
      if (Date.now() - failedAt < RECONNECT_PAUSE_MS && !session) {
        reject(new UpstreamUnavailableError(`${target}: UNAVAILABLE: connection failed`, target, GrpcStatus.UNAVAILABLE));
        return;
      }
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let stream: http2.ClientHttp2Stream | undefined;
      const reader = new ResponseReader(maxMessageBytes);
      const finish = (error: Error | undefined, value?: number) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(value!);
      };
      // 'close' follows every answer: build an error (and its stack) only when it is the outcome.
      const fail = (code: GrpcStatus, details: string, metadata?: Metadata) => {
        if (settled) return;
        finish(fromGrpcError({ code, details, metadata: metadata ?? new Metadata(), message: details, name: 'ServiceError' } as ServiceError, target));
        reader.release();
        // Whatever the peer still sends is not read: the stream ends here (HTTP/2 flow control stops it).
        if (stream && !stream.closed) stream.close(NGHTTP2_CANCEL);
      };

      let used: ClientHttp2Session;
      try {
        const headers: http2.OutgoingHttpHeaders = {
          ':method': 'POST',
          ':path': `/calculator.${method === 'Evaluate' ? 'Evaluator' : 'Calculator'}/${method}`,
          'content-type': 'application/grpc',
          te: 'trailers',
          'user-agent': USER_AGENT,
          'grpc-timeout': `${Math.ceil(remaining)}m`,
        };
        if (options.requestId) headers[REQUEST_ID_KEY] = options.requestId;
        if (options.traceparent) headers.traceparent = options.traceparent;
        if (options.tracestate) headers.tracestate = options.tracestate;
        used = connect();
        stream = used.request(headers);
      } catch (error) {
        // Out of stream ids, or the session closed under us: never reuse it.
        retire(session);
        fail(GrpcStatus.UNAVAILABLE, (error as Error).message);
        return;
      }
      const opened = stream;
      timer = setTimeout(() => {
        fail(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded');
        // A deadline of a larger job (an expression's) running out says nothing of the connection.
        if (!options.sharedDeadline) probe(used, SUSPECT_TIMEOUT_MS);
      }, remaining);

      let httpStatus: number | undefined;
      opened.on('data', (chunk: Buffer) => {
        if (settled) return;
        const failure = reader.push(chunk);
        if (failure) fail(failure.code, failure.details);
      });
      const onStatus = (headers: IncomingHttpHeaders) => {
        const raw = headers['grpc-status'];
        if (raw === undefined) {
          // Trailers without a status: a non-200 answer maps by its HTTP status, else nothing was said.
          if (httpStatus !== 200) fail(fromHttpStatus(httpStatus ?? 0).code, fromHttpStatus(httpStatus ?? 0).details);
          else fail(GrpcStatus.UNKNOWN, 'No status information received');
          return;
        }
        const status = Number(raw);
        if (status !== GrpcStatus.OK) {
          const message = headers['grpc-message'];
          const details = typeof message === 'string' ? percentDecoded(message) : '';
          const metadata = new Metadata();
          const code = headers[ERROR_CODE_KEY];
          if (typeof code === 'string') metadata.set(ERROR_CODE_KEY, code);
          fail(Number.isInteger(status) && status >= 0 && status <= 16 ? status : GrpcStatus.UNKNOWN, details, metadata);
          return;
        }
        const message = reader.message();
        if (!Buffer.isBuffer(message)) {
          fail(message.code, message.details);
          return;
        }
        try {
          const value = decodeResult(message);
          reader.release();
          finish(undefined, value);
        } catch (error) {
          fail(GrpcStatus.INTERNAL, `Response message parsing error: ${(error as Error).message}`);
        }
      };
      opened.on('response', (headers) => {
        httpStatus = Number(headers[':status']);
        if (headers['grpc-status'] !== undefined) onStatus(headers); // trailers-only answer
        else if (httpStatus !== 200) fail(fromHttpStatus(httpStatus).code, fromHttpStatus(httpStatus).details);
        else if (!isGrpcContentType(headers['content-type'])) fail(GrpcStatus.UNKNOWN, `unexpected content-type ${JSON.stringify(String(headers['content-type']).slice(0, 64))}`);
      });
      opened.on('trailers', onStatus);
      let dropped = false;
      opened.on('error', () => (dropped = true)); // 'close' follows with the stream's code
      opened.on('close', () => {
        if (settled) return;
        // A session that failed (reset, not HTTP/2, protocol error) lost the replica, not the call.
        if (broken.has(used) || used.destroyed) return fail(GrpcStatus.UNAVAILABLE, 'Connection dropped');
        const status = fromRstCode(opened.rstCode ?? 0, httpStatus, dropped || used.destroyed);
        fail(status.code, status.details);
      });
      opened.end(frame);
    });

  return {
    target,
    arithmetic: (op, num1, num2, options) => call(RPC_NAMES[op], frameOperationRequest(num1, num2), options),
    evaluate: (expression, options) => call(RPC_NAMES.evaluate, frameEvaluateRequest(expression), options),
    close() {
      session?.close();
      session = undefined;
    },
  };
}
