/**
 * What every calcmesh service process shares: a grpc-js server that also serves the standard
 * health and reflection services, the mapping of CalcError to gRPC status, request-id
 * propagation into logs, and a graceful stop (NOT_SERVING first, then finish in-flight calls).
 */
import {
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { loadProto } from '../shared/proto.js';
import { ERROR_CODE_KEY, REQUEST_ID_KEY } from '../domain/index.js';
import { SpanKind, startRpcSpan, type TraceContext } from '../shared/tracing.js';
import type { StreamMount } from './stream-host.js';


/**
 * What a handler sees of one call: its request id, its absolute deadline (ms since epoch), and
 * the trace context of its server span, for the calls it makes in turn.
 */
export interface CallContext extends TraceContext {
  readonly requestId: string;
  readonly deadline: number;
}

export type UnaryHandler<Req, Res> = (request: Req, context: CallContext) => Res | Promise<Res>;

export interface ServiceHost {
  readonly server: Server;
  readonly health: HealthImplementation;
  /** The Stream rpc's handler, when this service serves it. */
  readonly stream?: StreamMount | undefined;
  /** Binds and starts; resolves to the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** NOT_SERVING, wait `graceMs` so that callers move away, finish in-flight calls, close. */
  shutdown(options?: { graceMs?: number; forceAfterMs?: number }): Promise<void>;
}

export interface ServiceHostOptions {
  /** Fully-qualified name, e.g. `calculator.Calculator`. */
  serviceName: string;
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
  logger: Logger;
  /** TLS or plaintext (the default). */
  credentials?: ServerCredentials;
  /** The multiplexed Stream rpc, served on the same port (stream-host.ts). */
  stream?: StreamMount;
}

export function createServiceHost(options: ServiceHostOptions): ServiceHost {
  const server = new Server({ 'grpc.max_receive_message_length': 64 * 1024 });
  const health = new HealthImplementation({ '': 'SERVING', [options.serviceName]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(loadProto().definition, { services: [options.serviceName] }).addToServer(server);
  server.addService(options.definition, options.implementation);

  return {
    server,
    health,
    stream: options.stream,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
        server.bindAsync(address, options.credentials ?? ServerCredentials.createInsecure(), (error, bound) => {
          if (error) return reject(error);
          if (options.stream && !options.stream.attach(server)) options.logger.warn('the Stream rpc cannot be served on this grpc-js version; callers will use unary calls');
          resolve(bound);
        });
      }),
    shutdown: async ({ graceMs = 0, forceAfterMs = 10_000 } = {}) => {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(options.serviceName, 'NOT_SERVING');
      if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
      // tryShutdown alone would also wait for the callers' health Watch streams, which never
      // end by themselves: stop taking calls, wait for the unary calls in flight, then close
      // everything that is left (the Watches) at once.
      let closed = false;
      server.tryShutdown(() => {
        closed = true;
      });
      const until = Date.now() + forceAfterMs;
      await options.stream?.drain(forceAfterMs);
      while (inFlightCalls > 0 && !closed && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      if (inFlightCalls > 0) options.logger.warn({ forceAfterMs, inFlightCalls }, 'in-flight calls did not finish in time; forcing shutdown');
      if (!closed) server.forceShutdown();
    },
  };
}

/** Unary calls being handled by this process, for a graceful stop. */
let inFlightCalls = 0;

/**
 * Adapts a promise handler to grpc-js: request id and deadline in, CalcError out as its gRPC
 * status. An unexpected exception is INTERNAL with a generic message (the stack goes to the log).
 */
export type CallObserver = (rpc: string, outcome: string, seconds: number) => void;

export function unary<Req, Res>(name: string, handler: UnaryHandler<Req, Res>, logger: Logger, observe?: CallObserver) {
  const logCalls = logger.isLevelEnabled('info');
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const requestId = firstString(call.metadata, REQUEST_ID_KEY) ?? '';
    const deadlineValue = call.getDeadline();
    const deadline = deadlineValue instanceof Date ? deadlineValue.getTime() : Number(deadlineValue);
    const traceparent = firstString(call.metadata, 'traceparent');
    const span = startRpcSpan(name, SpanKind.SERVER, traceparent ? { traceparent, tracestate: firstString(call.metadata, 'tracestate') } : undefined);
    const context: CallContext = {
      requestId,
      deadline: Number.isFinite(deadline) ? deadline : Infinity,
      traceparent: span.context?.traceparent,
      tracestate: span.context?.tracestate,
    };
    const started = performance.now();
    inFlightCalls++;
    const done = (error: unknown, response?: Res) => {
      inFlightCalls--;
      span.end(error);
      const elapsed = performance.now() - started;
      const ms = Math.round(elapsed * 1000) / 1000;
      if (error === undefined) {
        if (logCalls) logger.info({ reqId: requestId, rpc: name, ms }, 'rpc ok');
        observe?.(name, 'OK', elapsed / 1000);
        callback(null, response);
        return;
      }
      if (error instanceof CalcError) {
        logger.info({ reqId: requestId, rpc: name, ms, code: error.code }, error.message);
        observe?.(name, error.code, elapsed / 1000);
        callback({ code: error.grpcStatus, details: error.message, metadata: codeMetadata(error) });
        return;
      }
      logger.error({ reqId: requestId, rpc: name, err: error }, 'unexpected error in handler');
      observe?.(name, 'INTERNAL', elapsed / 1000);
      callback({ code: GrpcStatus.INTERNAL, details: 'internal error' });
    };
    try {
      const value = handler(call.request, context);
      if (value instanceof Promise) value.then((r) => done(undefined, r), done);
      else done(undefined, value);
    } catch (error) {
      done(error);
    }
  };
}

/** Answers UNIMPLEMENTED for the rpcs of a shared service that this process does not own. */
export function notHere(name: string, owner: string) {
  return (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void =>
    callback({ code: GrpcStatus.UNIMPLEMENTED, details: `${name} is not served here; this is the ${owner} service` });
}


function codeMetadata(error: CalcError): Metadata {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, error.code);
  return metadata;
}

function firstString(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
