/**
 * The service side of the multiplexed `Stream` rpc: a lean node:http2 handler on the port of the
 * grpc-js server, which keeps serving everything else (the unary rpcs, health, reflection).
 *
 * grpc-js offers no public hook to serve one path itself, so `attach` takes over the 'stream'
 * listener of grpc-js's own HTTP/2 server once it is bound: requests for our path are handled
 * here, all others go to grpc-js's listener unchanged. If grpc-js's internals ever change shape,
 * `attach` returns false, grpc-js answers UNIMPLEMENTED for Stream, and callers fall back to
 * unary calls (stream-client.ts): slower, never wrong.
 *
 * Per stream: every Call is handled as it arrives and answered by id in completion order, so a
 * slow call never holds back a fast one; a `cancel` drops a call's answer (and lets the handler
 * stop early); at most `maxInFlight` calls are handled at once and reading pauses while the
 * reply buffer is full (HTTP/2 flow control then holds the caller back); a message larger than
 * `maxMessageBytes` ends the stream with RESOURCE_EXHAUSTED.
 */
import http2, { type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { status as GrpcStatus, type Server } from '@grpc/grpc-js';
import { CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { decodeCall, FrameReader, FramingError, FrameWriter, writeReply, type StreamCall, type StreamReply } from '../upstream/stream-codec.js';
import { SpanKind, startRpcSpan, type TraceContext, type Traced } from '../shared/tracing.js';
import type { CallObserver } from './grpc-host.js';

export const CALCULATOR_STREAM_PATH = '/calculator.Calculator/Stream';
export const EVALUATOR_STREAM_PATH = '/calculator.Evaluator/Stream';

/** What a stream handler sees of one call; `cancelled` turns true when the caller withdraws it. */
export interface StreamCallContext extends TraceContext {
  readonly requestId: string;
  readonly deadline: number;
  cancelled: boolean;
}

/** A call being handled, and its server span (ended with the answer, or when withdrawn). */
interface HeldCall extends StreamCallContext {
  readonly span: Traced;
}

/** Computes one call's result, or throws a CalcError (or a StatusError) as its answer. */
export type StreamHandler = (call: StreamCall, context: StreamCallContext) => number | Promise<number>;

/** An answer that is a bare gRPC status, such as UNIMPLEMENTED for an rpc another service owns. */
export class StatusError extends Error {
  constructor(readonly code: GrpcStatus, message: string) {
    super(message);
  }
}

export interface StreamMount {
  /** Serves the path on the (bound) grpc-js server's port; false if that cannot be done. */
  attach(server: Server): boolean;
  /** Stops taking calls, answers the ones in flight, ends every stream; resolves when all closed or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
  /** Calls being handled now, over all streams. */
  inFlight(): number;
}

export interface StreamMountOptions {
  readonly path: string;
  readonly handle: StreamHandler;
  readonly logger: Logger;
  readonly observe?: CallObserver | undefined;
  /** Per stream (default 1024). */
  readonly maxInFlight?: number;
  /** The largest Call message accepted (default 64 KiB, as the unary rpcs). */
  readonly maxMessageBytes?: number;
}

interface OpenStream {
  readonly stream: ServerHttp2Stream;
  readonly calls: Map<number, HeldCall>;
  /** Replies framed this turn of the event loop, written together (one DATA frame, one write). */
  readonly out: FrameWriter;
  clientEnded: boolean;
  writeBlocked: boolean;
  paused: boolean;
  status: GrpcStatus;
  message: string;
}

const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity' };

export function createStreamMount(options: StreamMountOptions): StreamMount {
  const maxInFlight = options.maxInFlight ?? 1024;
  const maxMessageBytes = options.maxMessageBytes ?? 64 * 1024;
  const logCalls = options.logger.isLevelEnabled('info');
  const patched = new WeakSet<Http2Server>();
  const open = new Set<OpenStream>();
  let draining = false;
  let inFlight = 0;

  const trailersOnly = (stream: ServerHttp2Stream, code: GrpcStatus, message: string) => {
    stream.respond({ ...GRPC_HEADERS, 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
  };

  const updateFlow = (s: OpenStream) => {
    const pause = s.writeBlocked || s.calls.size >= maxInFlight;
    if (pause === s.paused) return;
    s.paused = pause;
    if (pause) s.stream.pause();
    else s.stream.resume();
  };

  /** Ends the stream with its status once nothing is left to answer. */
  const maybeFinish = (s: OpenStream) => {
    if ((s.clientEnded || draining) && s.calls.size === 0 && !s.stream.writableEnded && !s.stream.destroyed) {
      if (draining && !s.clientEnded) {
        s.status = GrpcStatus.UNAVAILABLE;
        s.message = 'the service is shutting down';
      }
      flush(s);
      s.stream.end();
    }
  };

  /**
   * Replies are batched per turn of the event loop: the calls of one incoming DATA frame (and
   * whatever else completes in that turn) are answered by one write, so the caller reads one
   * frame instead of one per reply. Flow control sees the buffer when it is written.
   */
  const dirty = new Set<OpenStream>();
  let flushing: NodeJS.Immediate | undefined;

  const flush = (s: OpenStream) => {
    dirty.delete(s);
    const chunk = s.out.take();
    if (!chunk || s.stream.destroyed || s.stream.writableEnded) return;
    if (!s.stream.write(chunk) && !s.writeBlocked) {
      s.writeBlocked = true;
      updateFlow(s);
      s.stream.once('drain', () => {
        s.writeBlocked = false;
        updateFlow(s);
      });
    }
  };

  const flushAll = () => {
    flushing = undefined;
    for (const s of dirty) flush(s);
  };

  const send = (s: OpenStream, reply: Partial<StreamReply> & { id: number }) => {
    if (s.stream.destroyed || s.stream.writableEnded) return;
    writeReply(s.out, reply);
    dirty.add(s);
    flushing ??= setImmediate(flushAll);
  };

  const answer = (s: OpenStream, call: StreamCall, context: HeldCall, started: number, error: unknown, result?: number) => {
    if (s.calls.get(call.id) !== context) return; // withdrawn by the caller: nobody waits for the answer
    context.span.end(error);
    s.calls.delete(call.id);
    inFlight--;
    const elapsed = performance.now() - started;
    if (error === undefined) {
      if (logCalls) options.logger.info({ reqId: context.requestId, rpc: call.method, ms: Math.round(elapsed * 1000) / 1000, stream: true }, 'rpc ok');
      options.observe?.(call.method, 'OK', elapsed / 1000);
      send(s, { id: call.id, result });
    } else if (error instanceof CalcError) {
      if (logCalls) options.logger.info({ reqId: context.requestId, rpc: call.method, code: error.code, stream: true }, error.message);
      options.observe?.(call.method, error.code, elapsed / 1000);
      send(s, { id: call.id, code: error.grpcStatus, errorCode: error.code, message: error.message });
    } else if (error instanceof StatusError) {
      options.observe?.(call.method, GrpcStatus[error.code] ?? String(error.code), elapsed / 1000);
      send(s, { id: call.id, code: error.code, message: error.message });
    } else {
      options.logger.error({ reqId: context.requestId, rpc: call.method, err: error }, 'unexpected error in handler');
      options.observe?.(call.method, 'INTERNAL', elapsed / 1000);
      send(s, { id: call.id, code: GrpcStatus.INTERNAL, message: 'internal error' });
    }
    updateFlow(s);
    maybeFinish(s);
  };

  const onMessage = (s: OpenStream, buffer: Buffer, start: number, end: number) => {
    const call = decodeCall(buffer, start, end);
    const known = s.calls.get(call.id);
    if (call.cancel) {
      if (known) {
        known.cancelled = true;
        known.span.end(new CalcError('UPSTREAM_ERROR', 'withdrawn by the caller'));
        s.calls.delete(call.id);
        inFlight--;
        updateFlow(s);
        maybeFinish(s);
      }
      return;
    }
    if (known) return send(s, { id: call.id, code: GrpcStatus.INVALID_ARGUMENT, errorCode: 'INVALID_ARGUMENT', message: `call id ${call.id} is already in flight` });
    if (draining) return send(s, { id: call.id, code: GrpcStatus.UNAVAILABLE, message: 'the service is shutting down' });
    const span = startRpcSpan(call.method, SpanKind.SERVER, call.traceparent ? { traceparent: call.traceparent, tracestate: call.tracestate || undefined } : undefined);
    const context: HeldCall = {
      requestId: call.requestId,
      deadline: call.timeoutMs > 0 ? Date.now() + call.timeoutMs : Infinity,
      cancelled: false,
      traceparent: span.context?.traceparent,
      tracestate: span.context?.tracestate,
      span,
    };
    s.calls.set(call.id, context);
    inFlight++;
    const started = performance.now();
    try {
      const value = options.handle(call, context);
      if (typeof value === 'number') answer(s, call, context, started, undefined, value);
      else value.then((r) => answer(s, call, context, started, undefined, r), (e: unknown) => answer(s, call, context, started, e ?? new Error('rejected')));
    } catch (error) {
      answer(s, call, context, started, error);
    }
    updateFlow(s);
  };

  const serve = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => undefined); // a reset by the caller; 'close' cleans up
    if (draining) return trailersOnly(stream, GrpcStatus.UNAVAILABLE, 'the service is shutting down');
    const contentType = headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported`);
    stream.respond(GRPC_HEADERS, { waitForTrailers: true });
    const s: OpenStream = { stream, calls: new Map(), out: new FrameWriter(), clientEnded: false, writeBlocked: false, paused: false, status: GrpcStatus.OK, message: '' };
    open.add(s);
    const reader = new FrameReader(maxMessageBytes);
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(s.status), 'grpc-message': encodeURIComponent(s.message) }));
    stream.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (buffer, start, end) => onMessage(s, buffer, start, end));
      } catch (error) {
        // The stream cannot be read on: its calls are abandoned (the caller retries them) and it ends with the reason.
        for (const context of s.calls.values()) {
          context.cancelled = true;
          context.span.end(error);
        }
        inFlight -= s.calls.size;
        s.calls.clear();
        s.status = error instanceof FramingError && /exceeds/.test(error.message) ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL;
        s.message = (error as Error).message;
        stream.removeAllListeners('data');
        stream.resume(); // discard whatever else arrives
        flush(s); // the replies already made still go
        if (!stream.writableEnded) stream.end();
      }
    });
    stream.on('end', () => {
      s.clientEnded = true;
      maybeFinish(s);
    });
    stream.on('close', () => {
      open.delete(s);
      dirty.delete(s);
      s.out.clear();
      for (const context of s.calls.values()) {
        context.cancelled = true;
        context.span.end(new CalcError('UPSTREAM_ERROR', 'the stream closed before the answer'));
      }
      inFlight -= s.calls.size;
      s.calls.clear();
    });
  };

  return {
    attach(server) {
      const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
      if (!(http2Servers instanceof Map)) return false;
      let attached = false;
      for (const h2 of http2Servers.keys() as IterableIterator<Http2Server>) {
        if (patched.has(h2)) {
          attached = true;
          continue;
        }
        const grpcListeners = h2.listeners('stream') as Array<(...args: unknown[]) => void>;
        if (grpcListeners.length === 0) continue;
        h2.removeAllListeners('stream');
        h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
          if (headers[':path'] === options.path) serve(stream, headers);
          else for (const listener of grpcListeners) listener.call(h2, stream, headers, ...rest);
        });
        patched.add(h2);
        attached = true;
      }
      return attached;
    },
    async drain(timeoutMs) {
      draining = true;
      for (const s of open) maybeFinish(s);
      const until = Date.now() + timeoutMs;
      while (open.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      for (const s of open) s.stream.close(http2.constants.NGHTTP2_CANCEL);
    },
    inFlight: () => inFlight,
  };
}
