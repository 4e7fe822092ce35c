/**
 * Typed promise clients over grpc-js, one per `host:port` target. They know nothing of
 * replicas, breakers or queues: they make one call with a deadline and a request id and
 * turn its failure into a CalcError.
 */
import { Client, credentials, Metadata, status as GrpcStatus, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { RPC_NAMES, type ArithmeticOp } from '../shared/operations.js';
import { REQUEST_ID_KEY } from '../domain/index.js';
import type { TraceContext } from '../shared/tracing.js';
import { decodeResult, DEFAULT_MAX_MESSAGE_BYTES, frameEvaluateRequest, frameOperationRequest } from './codec.js';
import { fromGrpcError, UpstreamUnavailableError } from './errors.js';

/** A call's deadline, request id and W3C trace context (traceparent, tracestate: sent as metadata when set). */
export interface CallOptions extends TraceContext {
  /** Absolute deadline, ms since the epoch. */
  readonly deadline: number;
  readonly requestId: string;
  /**
   * The deadline belongs to a larger job (an expression's calls share it): a call cut short by
   * it says nothing about the replica and never counts against its circuit.
   */
  readonly sharedDeadline?: boolean;
}

/** Reconnect quickly to a service that comes back; keepalive finds peers that vanished. */
export const CHANNEL_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.enable_retries': 0,
} as const;

export interface TargetClient {
  readonly target: string;
  arithmetic(op: ArithmeticOp, num1: number, num2: number, options: CallOptions): Promise<number>;
  evaluate(expression: string, options: CallOptions): Promise<number>;
  close(): void;
}

/**
 * The original unary rpcs with the lean client's codec: a response that is not a result (bytes
 * without field 1) fails as a parsing error here too, not as a result of 0. The call is made as
 * a server-streaming one, which is the same on the wire: grpc-js's unary call reads one message
 * and then waits for the status, so a peer that keeps sending would hold it until its deadline;
 * reading on lets a second message end the call at once, as the lean client does.
 */
const encodeOperands = ([a, b]: readonly [number, number]) => frameOperationRequest(a, b).subarray(5);
const encodeExpression = (expression: string) => frameEvaluateRequest(expression).subarray(5);

export function createTargetClient(
  target: string,
  creds: ChannelCredentials = credentials.createInsecure(),
  { maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES }: { maxMessageBytes?: number } = {},
): TargetClient {
  let channel: Client | undefined;

  const unaryCall = <Req>(path: string, serialize: (request: Req) => Buffer, request: Req, options: CallOptions) =>
    new Promise<number>((resolve, reject) => {
      if (options.deadline <= Date.now()) {
        reject(new UpstreamUnavailableError(`${target}: no time left before the deadline`, target, GrpcStatus.DEADLINE_EXCEEDED, 'deadline'));
        return;
      }
      const metadata = new Metadata();
      if (options.requestId) metadata.set(REQUEST_ID_KEY, options.requestId);
      if (options.traceparent) metadata.set('traceparent', options.traceparent);
      if (options.tracestate) metadata.set('tracestate', options.tracestate);
      channel ??= new Client(target, creds, { ...CHANNEL_OPTIONS, 'grpc.max_receive_message_length': maxMessageBytes });
      const call = channel.makeServerStreamRequest<Req, number>(path, serialize, decodeResult, request, metadata, { deadline: options.deadline });
      let results = 0;
      let result = 0;
      let settled = false;
      const fail = (error: Partial<ServiceError>) => {
        if (settled) return;
        settled = true;
        reject(fromGrpcError({ metadata: new Metadata(), ...error } as ServiceError, target));
      };
      call.on('data', (value: number) => {
        if (++results === 1) result = value;
        else if (results === 2) {
          fail({ code: GrpcStatus.UNIMPLEMENTED, details: 'Too many responses received' });
          call.cancel();
        }
      });
      call.on('error', (error: ServiceError) => fail(error));
      call.on('status', (status: { code: GrpcStatus }) => {
        if (status.code !== GrpcStatus.OK || settled) return; // errors come through 'error'
        if (results === 0) return fail({ code: GrpcStatus.UNIMPLEMENTED, details: 'No message received' });
        settled = true;
        resolve(result);
      });
    });

  return {
    target,
    arithmetic: (op, num1, num2, options) => unaryCall(`/calculator.Calculator/${RPC_NAMES[op]}`, encodeOperands, [num1, num2] as const, options),
    evaluate: (expression, options) => unaryCall(`/calculator.Evaluator/${RPC_NAMES.evaluate}`, encodeExpression, expression, options),
    close() {
      channel?.close();
    },
  };
}
