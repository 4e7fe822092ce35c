import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { CHANNEL_OPTIONS } from './client.js';

export type ReplicaHealth = 'SERVING' | 'NOT_SERVING' | 'UNREACHABLE';

const HealthClient = makeGenericClientConstructor(healthService, 'Health');

/** A standard grpc.health.v1 Check against one target, with a short deadline. */
export function createHealthProbe(target: string) {
  let client: Client | undefined;
  return {
    check(service = '', timeoutMs = 500): Promise<ReplicaHealth> {
      client ??= new HealthClient(target, credentials.createInsecure(), CHANNEL_OPTIONS);
      return new Promise((resolve) => {
        const check = (client as unknown as { check: Function }).check;
        check.call(client, { service }, { deadline: Date.now() + timeoutMs }, (error: ServiceError | null, reply?: { status: string }) => {
          if (error) resolve('UNREACHABLE');
          else resolve(reply?.status === 'SERVING' ? 'SERVING' : 'NOT_SERVING');
        });
      });
    },
    close() {
      client?.close();
    },
  };
}
