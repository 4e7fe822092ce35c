/**
 * Typed promise clients over grpc-js, one per `host:port` target. They know nothing of
 * replicas, breakers or queues: they make one call with a deadline and a request id and
 * turn its failure into a CalcError.
 */
import { credentials, makeGenericClientConstructor, Metadata, type ChannelCredentials, type Client, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { RPC_NAMES, type ArithmeticOp } from '../shared/operations.js';
import { REQUEST_ID_KEY } from '../domain/wire.js';
import { decodeResult, DEFAULT_MAX_MESSAGE_BYTES, frameEvaluateRequest, frameOperationRequest } from './codec.js';
import { fromGrpcError, UpstreamUnavailableError } from './errors.js';

export interface CallOptions {
  /** Absolute deadline, ms since the epoch. */
  readonly deadline: number;
  readonly requestId: string;
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
 * The original unary rpcs, encoded by the same codec as the lean client: a response that is not
 * a result (bytes without field 1) fails as a parsing error here too, not as a result of 0.
 */
type Operands = readonly [number, number];
const method = (path: string, serialize: (value: any) => Buffer) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: serialize,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (v: number) => Buffer.from([v]),
  responseDeserialize: decodeResult,
});
const operation = (rpc: string) => method(`/calculator.Calculator/${rpc}`, ([a, b]: Operands) => frameOperationRequest(a, b).subarray(5));
const CalculatorClient = makeGenericClientConstructor(
  { Add: operation('Add'), Subtract: operation('Subtract'), Multiply: operation('Multiply'), Divide: operation('Divide') } as unknown as ServiceDefinition,
  'Calculator',
);
const EvaluatorClient = makeGenericClientConstructor(
  { Evaluate: method('/calculator.Evaluator/Evaluate', (expression: string) => frameEvaluateRequest(expression).subarray(5)) } as unknown as ServiceDefinition,
  'Evaluator',
);

export function createTargetClient(
  target: string,
  creds: ChannelCredentials = credentials.createInsecure(),
  { maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES }: { maxMessageBytes?: number } = {},
): TargetClient {
  const channelOptions = { ...CHANNEL_OPTIONS, 'grpc.max_receive_message_length': maxMessageBytes };
  let calculator: Client | undefined;
  let evaluator: Client | undefined;

  const unaryCall = (client: Client, method: string, request: unknown, options: CallOptions) =>
    new Promise<number>((resolve, reject) => {
      if (options.deadline <= Date.now()) {
        reject(new UpstreamUnavailableError(`${target}: no time left before the deadline`, target, 4, 'deadline'));
        return;
      }
      const metadata = new Metadata();
      if (options.requestId) metadata.set(REQUEST_ID_KEY, options.requestId);
      const fn = (client as unknown as Record<string, Function>)[method]!;
      fn.call(client, request, metadata, { deadline: options.deadline }, (error: ServiceError | null, result: number) => {
        if (error) reject(fromGrpcError(error, target));
        else resolve(result);
      });
    });

  return {
    target,
    arithmetic(op, num1, num2, options) {
      calculator ??= new CalculatorClient(target, creds, channelOptions);
      return unaryCall(calculator, RPC_NAMES[op], [num1, num2], options);
    },
    evaluate(expression, options) {
      evaluator ??= new EvaluatorClient(target, creds, channelOptions);
      return unaryCall(evaluator, RPC_NAMES.evaluate, expression, options);
    },
    close() {
      calculator?.close();
      evaluator?.close();
    },
  };
}
