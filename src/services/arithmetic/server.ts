import type { ServerCredentials, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '../../shared/logger.js';
import { ARITHMETIC_OPS, RPC_NAMES, type ArithmeticOp } from '../../shared/operations.js';
import { CALCULATOR_SERVICE, loadProto, type OperationRequest, type OperationResponse } from '../../shared/proto.js';
import { createServiceHost, notHere, unary, type CallObserver, type ServiceHost } from '../grpc-host.js';
import { compute } from '../../domain/index.js';
import { CALCULATOR_STREAM_PATH, createStreamMount, StatusError } from '../stream-host.js';
import { status as GrpcStatus } from '@grpc/grpc-js';

/** An unstarted gRPC server for one arithmetic operation; its other rpcs answer UNIMPLEMENTED. */
export function buildArithmeticServer(op: ArithmeticOp, deps: { logger: Logger; observe?: CallObserver; credentials?: ServerCredentials }): ServiceHost {
  const implementation: UntypedServiceImplementation = {};
  for (const other of ARITHMETIC_OPS) {
    const rpc = RPC_NAMES[other];
    implementation[rpc] =
      other === op
        ? unary<OperationRequest, OperationResponse>(rpc, (req) => ({ result: compute(op, req.num1, req.num2) }), deps.logger, deps.observe)
        : notHere(rpc, op);
  }
  const rpc = RPC_NAMES[op];
  const stream = createStreamMount({
    path: CALCULATOR_STREAM_PATH,
    handle: (call) => {
      if (call.method !== rpc) throw new StatusError(GrpcStatus.UNIMPLEMENTED, `${call.method || 'an empty method'} is not served here; this is the ${op} service`);
      return compute(op, call.num1, call.num2);
    },
    logger: deps.logger,
    observe: deps.observe,
  });
  return createServiceHost({
    serviceName: CALCULATOR_SERVICE,
    definition: loadProto().Calculator.service as ServiceDefinition,
    implementation,
    logger: deps.logger,
    credentials: deps.credentials,
    stream,
  });
}
