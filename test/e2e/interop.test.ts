/**
 * calcmesh's gateway in front of foreign services that serve only `calculator.Calculator` (no
 * health, no reflection, no queue consumer): a grpc-js server from the original proto, and the
 * original system's kind of server, Python grpcio (Debian's python3-grpcio), when installed.
 * The gateway and `calcmesh relay add` are real processes over the embedded queue.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, type ServiceDefinition, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { loadProto } from '../../src/shared/proto.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';
import { spawnGroup, type Spawned } from '../helpers/processes.js';

const CLI = fileURLToPath(new URL('../../bin/calcmesh.js', import.meta.url));
const PYTHON_FIXTURE = fileURLToPath(new URL('./fixtures/python_calculator.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

interface Foreign { stop(): Promise<void> }

/** A grpc-js server of the original three rpcs only. */
async function grpcJsCalculator(port: number): Promise<Foreign> {
  const server = new Server();
  const rpc = (f: (a: number, b: number) => number) => (call: ServerUnaryCall<{ num1: number; num2: number }, unknown>, done: sendUnaryData<unknown>) =>
    done(null, { result: f(call.request.num1, call.request.num2) });
  server.addService(loadProto().Calculator.service as ServiceDefinition, { Add: rpc((a, b) => a + b), Subtract: rpc((a, b) => a - b), Multiply: rpc((a, b) => a * b) });
  await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return { stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()) };
}

async function pythonCalculator(port: number): Promise<Foreign> {
  const child = spawnGroup(PYTHON, [PYTHON_FIXTURE, String(port)], { ...process.env, PYTHONUNBUFFERED: '1' });
  await child.waitForOutput(/python calculator listening/, 20_000);
  return { stop: () => child.stop('SIGKILL') };
}

const hasGrpcio = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import grpc'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const PEERS = { 'grpc-js': grpcJsCalculator, 'python grpcio': pythonCalculator } as const;

for (const [name, startForeign] of Object.entries(PEERS)) {
  describe(`a foreign ${name} Calculator behind the gateway`, { skip: name === 'python grpcio' && !hasGrpcio ? 'no python3-grpcio' : false }, () => {
    let cluster: Cluster | undefined;
    let foreign: Foreign | undefined;
    let relay: Spawned | undefined;
    after(async () => {
      await relay?.stop('SIGKILL').catch(() => undefined);
      await foreign?.stop();
      await cluster?.close();
    });

    test('when it serves, then answers are direct; when it is down, then 202; when it is back, then direct again, and the relay computed what was queued', async () => {
      cluster = await startCluster({ services: [], env: { CALC_BREAKER_HALF_OPEN_MS: '500', CALC_LEASE_MS: '5000' } });
      const port = Number(cluster.env.CALC_ADD_TARGETS!.split(':')[1]);
      foreign = await startForeign(port);

      // No health service: the replica is used at once, judged by its answers.
      const direct = await http(`${cluster.gatewayUrl}/add/6/7`);
      assert.deepEqual([direct.status, direct.body?.result], [200, 13], direct.text);
      const zero = await http(`${cluster.gatewayUrl}/add/2/-2`);
      assert.deepEqual([zero.status, zero.body?.result], [200, 0], 'a zero result (an empty message) is 0');

      await foreign.stop();
      foreign = undefined;
      const queued: string[] = [];
      for (let i = 1; i <= 5; i++) {
        const reply = await http(`${cluster.gatewayUrl}/add/${i}/100`);
        assert.equal(reply.status, 202, reply.text);
        queued.push(reply.body.id);
      }

      relay = spawnGroup(process.execPath, [CLI, 'relay', 'add'], cluster.env);
      await relay.waitForOutput(/add relay started/, 20_000);
      foreign = await startForeign(port);
      await waitFor(async () => ((await http(`${cluster!.gatewayUrl}/add/1/1`)).body?.result === 2 ? true : undefined), 'a direct answer after the return', 5000);

      for (const [i, id] of queued.entries()) {
        const ticket: { status: string; result: number } = (await http(`${cluster.gatewayUrl}/v1/results/${id}?wait=10`)).body;
        assert.deepEqual([ticket.status, ticket.result], ['done', i + 1 + 100], JSON.stringify(ticket));
      }
    });
  });
}
