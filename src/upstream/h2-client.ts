/**
 * A lean gRPC unary client over node:http2, for the hot path (the gateway's and the evaluator's
 * calls). It speaks the gRPC HTTP/2 protocol as grpc-js does: `grpc-timeout` carries the
 * deadline to the server, metadata travel as headers, the status and message come back in the
 * trailers (or in a trailers-only answer), HTTP/2 does the flow control, and a session that
 * receives GOAWAY or closes is replaced by a new one for the next call. It skips what a unary
 * call with a fixed message does not need: per-call objects, interceptors, name resolution.
 * Health probes and Watch stay on grpc-js.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { RPC_NAMES } from '../shared/operations.js';
import { ERROR_CODE_KEY, REQUEST_ID_KEY } from '../domain/wire.js';
import type { CallOptions, TargetClient } from './client.js';
import { decodeResult, frameEvaluateRequest, frameOperationRequest } from './codec.js';
import { fromGrpcError, UpstreamUnavailableError } from './errors.js';

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

/** grpc-message is percent-encoded; a peer that got it wrong must not crash the caller. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Destroys the session unless it answers a PING within `timeoutMs`; its streams then fail and the next call dials anew. */
function probe(session: ClientHttp2Session, timeoutMs: number): void {
  if (session.closed || session.destroyed) return;
  const timer = setTimeout(() => session.destroy(new Error(`no PING answer in ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  try {
    session.ping((error) => {
      clearTimeout(timer);
      if (error) session.destroy(error);
    });
  } catch {
    clearTimeout(timer); // a PING already outstanding, or the session is closing
  }
}

export function createH2TargetClient(target: string, tls?: H2Tls): TargetClient {
  const authority = `${tls ? 'https' : 'http'}://${target}`;
  let session: ClientHttp2Session | undefined;
  let failedAt = 0;

  const connect = (): ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const options: SecureClientSessionOptions = { settings: { enablePush: false } };
    if (tls) Object.assign(options, { ca: tls.ca ?? undefined, cert: tls.cert ?? undefined, key: tls.key ?? undefined });
    const created = http2.connect(authority, options);
    const forget = () => {
      if (session === created) session = undefined;
    };
    created.on('error', () => {
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
      };

      let stream: http2.ClientHttp2Stream;
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
        used = connect();
        stream = used.request(headers);
      } catch (error) {
        fail(GrpcStatus.UNAVAILABLE, (error as Error).message);
        return;
      }
      timer = setTimeout(() => {
        stream.close(NGHTTP2_CANCEL);
        fail(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded');
        probe(used, SUSPECT_TIMEOUT_MS);
      }, remaining);

      const chunks: Buffer[] = [];
      let received = 0;
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
      });
      const onStatus = (headers: IncomingHttpHeaders) => {
        const status = Number(headers['grpc-status']);
        const details = percentDecoded(String(headers['grpc-message'] ?? ''));
        if (status !== GrpcStatus.OK) {
          const metadata = new Metadata();
          const code = headers[ERROR_CODE_KEY];
          if (typeof code === 'string') metadata.set(ERROR_CODE_KEY, code);
          fail(Number.isInteger(status) ? status : GrpcStatus.UNKNOWN, details, metadata);
          return;
        }
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
        if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
          fail(GrpcStatus.INTERNAL, 'malformed or compressed response message');
          return;
        }
        try {
          finish(undefined, decodeResult(body.subarray(5)));
        } catch (error) {
          fail(GrpcStatus.INTERNAL, `undecodable response: ${(error as Error).message}`);
        }
      };
      stream.on('response', (headers) => {
        if (headers[':status'] !== 200) fail(GrpcStatus.UNAVAILABLE, `HTTP status ${headers[':status']}`);
        else if (headers['grpc-status'] !== undefined) onStatus(headers); // trailers-only answer
      });
      stream.on('trailers', onStatus);
      stream.on('error', (error) => fail(GrpcStatus.UNAVAILABLE, error.message));
      stream.on('close', () => fail(GrpcStatus.UNAVAILABLE, `stream closed without a status (code ${stream.rstCode})`));
      stream.end(frame);
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
