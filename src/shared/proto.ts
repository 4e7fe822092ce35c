import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';

/** proto/ sits two levels above both src/shared and dist/shared. */
const PROTO_PATH = fileURLToPath(new URL('../../proto/calculator.proto', import.meta.url));

export const CALCULATOR_SERVICE = 'calculator.Calculator';
export const EVALUATOR_SERVICE = 'calculator.Evaluator';

let cached: { definition: protoLoader.PackageDefinition; pkg: GrpcObject } | undefined;

/** The package definition (for servers and reflection) and the loaded package (for clients). */
export function loadProto() {
  if (!cached) {
    // longs/enums/defaults as in the original: doubles stay numbers, zero fields decode as 0.
    const definition = protoLoader.loadSync(PROTO_PATH, { keepCase: true, defaults: true, oneofs: true });
    cached = { definition, pkg: loadPackageDefinition(definition) };
  }
  const calculator = cached.pkg.calculator as GrpcObject;
  return {
    definition: cached.definition,
    Calculator: calculator.Calculator as ServiceClientConstructor,
    Evaluator: calculator.Evaluator as ServiceClientConstructor,
  };
}

export interface OperationRequest { num1: number; num2: number }
export interface OperationResponse { result: number }
export interface EvaluateRequest { expression: string }
export interface EvaluateResponse { result: number }
