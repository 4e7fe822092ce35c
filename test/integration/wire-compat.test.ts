/**
 * Proves that a client generated from the original proto works against our services: the
 * request is encoded by hand from the original field numbers (two doubles, fields 1 and 2),
 * sent through a raw grpc-js Client with no knowledge of our .proto, and the reply decoded by hand.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, credentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { startServices, type TestServices } from '../helpers/services.js';

function encodeOperationRequest(num1: number, num2: number): Buffer {
  const buffer = Buffer.alloc(18);
  buffer[0] = (1 << 3) | 1; // field 1, wire type 1 (64-bit)
  buffer.writeDoubleLE(num1, 1);
  buffer[9] = (2 << 3) | 1; // field 2, wire type 1
  buffer.writeDoubleLE(num2, 10);
  return buffer;
}

/** OperationResponse { double result = 1; } — proto3 omits a zero field, so an empty body is 0. */
function decodeOperationResponse(buffer: Buffer): number {
  if (buffer.length === 0) return 0;
  assert.equal(buffer[0], (1 << 3) | 1, 'field 1 as a 64-bit value');
  return buffer.readDoubleLE(1);
}

function rawCall(target: string, method: string, num1: number, num2: number): Promise<number> {
  const client = new Client(target, credentials.createInsecure());
  return new Promise<number>((resolve, reject) => {
    client.makeUnaryRequest(
      `/calculator.Calculator/${method}`,
      (value: Buffer) => value,
      (value: Buffer) => value,
      encodeOperationRequest(num1, num2),
      { deadline: Date.now() + 5000 },
      (error: ServiceError | null, reply?: Buffer) => (error ? reject(error) : resolve(decodeOperationResponse(reply!))),
    );
  }).finally(() => client.close());
}

describe('wire compatibility with the original proto', () => {
  let services: TestServices;
  before(async () => { services = await startServices(); });
  after(() => services.close());

  const cases = [
    ['add', 'Add', 6, 7, 13],
    ['subtract', 'Subtract', 6, 7, -1],
    ['multiply', 'Multiply', 6, 7, 42],
    ['divide', 'Divide', 7, 2, 3.5],
    ['add', 'Add', 2, -2, 0],
  ] as const;
  for (const [op, method, a, b, expected] of cases) {
    test(`when ${method}(${a}, ${b}) is sent as hand-encoded bytes, then the hand-decoded reply is ${expected}`, async () => {
      assert.equal(await rawCall(services.targets[op][0]!, method, a, b), expected);
    });
  }

  test('when a service is asked for an rpc it does not own, then it answers UNIMPLEMENTED', async () => {
    await assert.rejects(rawCall(services.targets.add[0]!, 'Multiply', 2, 3), (error: ServiceError) => error.code === GrpcStatus.UNIMPLEMENTED);
    await assert.rejects(rawCall(services.targets.divide[0]!, 'Add', 2, 3), (error: ServiceError) => error.code === GrpcStatus.UNIMPLEMENTED);
  });

  test('when divide is asked to divide by zero, then it answers FAILED_PRECONDITION, not UNAVAILABLE', async () => {
    await assert.rejects(rawCall(services.targets.divide[0]!, 'Divide', 1, 0), (error: ServiceError) => error.code === GrpcStatus.FAILED_PRECONDITION);
  });

  test('when a service is asked for its health, then grpc.health.v1 answers SERVING', async () => {
    const { createHealthProbe } = await import('../../src/upstream/health.js');
    const probe = createHealthProbe(services.targets.multiply[0]!);
    try {
      assert.equal(await probe.check('calculator.Calculator'), 'SERVING');
    } finally {
      probe.close();
    }
  });
});

test('when reflection is asked to list services, then it names calculator.Calculator (so grpcurl works)', async () => {
  const services = await startServices();
  const client = new Client(services.targets.add[0]!, credentials.createInsecure());
  try {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const call = client.makeBidiStreamRequest(
        '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        (value: Buffer) => value,
        (value: Buffer) => value,
        { deadline: Date.now() + 5000 },
      );
      call.on('data', (data: Buffer) => { resolve(data); call.end(); });
      call.on('error', reject);
      call.write(Buffer.from([(7 << 3) | 2, 0])); // list_services = "" (field 7, length-delimited)
    });
    assert.ok(reply.includes(Buffer.from('calculator.Calculator')), 'listed');
  } finally {
    client.close();
    await services.close();
  }
});
