/**
 * Typed promise clients over grpc-js, one per `host:port` target. They know nothing of
 * replicas, breakers or queues: they make one call with a deadline and a request id and
 * turn its failure into a CalcError.
 */
import { credentials, Metadata, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { RPC_NAMES, type ArithmeticOp } from '../shared/operations.js';
import { loadProto, type EvaluateResponse, type OperationResponse } from '../shared/proto.js';
import { REQUEST_ID_KEY } from '../domain/wire.js';
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

export function createTargetClient(target: string, creds: ChannelCredentials = credentials.createInsecure()): TargetClient {
  const { Calculator, Evaluator } = loadProto();
  let calculator: Client | undefined;
  let evaluator: Client | undefined;

  const unaryCall = <Res extends { result: number }>(client: Client, method: string, request: object, options: CallOptions) =>
    new Promise<number>((resolve, reject) => {
      if (options.deadline <= Date.now()) {
        reject(new UpstreamUnavailableError(`${target}: no time left before the deadline`, target, 4, 'deadline'));
        return;
      }
      const metadata = new Metadata();
      if (options.requestId) metadata.set(REQUEST_ID_KEY, options.requestId);
      const fn = (client as unknown as Record<string, Function>)[method]!;
      fn.call(client, request, metadata, { deadline: options.deadline }, (error: ServiceError | null, response: Res) => {
        if (error) reject(fromGrpcError(error, target));
        else resolve(response.result);
      });
    });

  return {
    target,
    arithmetic(op, num1, num2, options) {
      calculator ??= new Calculator(target, creds, CHANNEL_OPTIONS);
      return unaryCall<OperationResponse>(calculator, RPC_NAMES[op], { num1, num2 }, options);
    },
    evaluate(expression, options) {
      evaluator ??= new Evaluator(target, creds, CHANNEL_OPTIONS);
      return unaryCall<EvaluateResponse>(evaluator, RPC_NAMES.evaluate, { expression }, options);
    },
    close() {
      calculator?.close();
      evaluator?.close();
    },
  };
}
