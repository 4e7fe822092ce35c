import { credentials, makeGenericClientConstructor, status as GrpcStatus, type ChannelCredentials, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { CHANNEL_OPTIONS } from './client.js';

/** UNIMPLEMENTED: the replica serves no grpc.health.v1 (the original Python services): its calls judge it. */
export type ReplicaHealth = 'SERVING' | 'NOT_SERVING' | 'UNREACHABLE' | 'UNKNOWN' | 'UNIMPLEMENTED';

const HealthClient = makeGenericClientConstructor(healthService, 'Health');
const REWATCH_MIN_MS = 250;
const REWATCH_MAX_MS = 2000;
/** A replica without a health service is asked again this rarely (it may be replaced by one that has it). */
const REWATCH_UNIMPLEMENTED_MS = 30_000;

/** grpc.health.v1 against one target: a one-off Check, and a Watch that follows the replica. */
export function createHealthProbe(target: string, creds: ChannelCredentials = credentials.createInsecure()) {
  let client: Client | undefined;
  const health = () => (client ??= new HealthClient(target, creds, CHANNEL_OPTIONS));

  return {
    check(service = '', timeoutMs = 500): Promise<ReplicaHealth> {
      return new Promise((resolve) => {
        const check = (health() as unknown as { check: Function }).check;
        check.call(client, { service }, { deadline: Date.now() + timeoutMs }, (error: ServiceError | null, reply?: { status: string }) => {
          if (error) resolve(error.code === GrpcStatus.UNIMPLEMENTED ? 'UNIMPLEMENTED' : 'UNREACHABLE');
          else resolve(reply?.status === 'SERVING' ? 'SERVING' : 'NOT_SERVING');
        });
      });
    },

    /**
     * Reports every change of the replica's health until the returned function is called. A
     * stream that ends (the replica died or restarted) reports UNREACHABLE and is opened again
     * with a capped backoff, so a replica that comes back is seen within REWATCH_MAX_MS.
     */
    watch(onHealth: (health: ReplicaHealth) => void): () => void {
      let stopped = false;
      let call: ClientReadableStream<{ status: string }> | undefined;
      let timer: NodeJS.Timeout | undefined;
      let backoffMs = REWATCH_MIN_MS;
      const open = () => {
        if (stopped) return;
        const watch = (health() as unknown as { watch: Function }).watch;
        const stream: ClientReadableStream<{ status: string }> = watch.call(client, { service: '' });
        call = stream;
        stream.on('data', (reply: { status: string }) => {
          backoffMs = REWATCH_MIN_MS;
          onHealth(reply.status === 'SERVING' ? 'SERVING' : 'NOT_SERVING');
        });
        let unimplemented = false;
        stream.on('error', (error: ServiceError) => (unimplemented = error.code === GrpcStatus.UNIMPLEMENTED)); // 'close' follows
        stream.on('close', () => {
          if (stopped || call !== stream) return;
          onHealth(unimplemented ? 'UNIMPLEMENTED' : 'UNREACHABLE');
          timer = setTimeout(open, unimplemented ? REWATCH_UNIMPLEMENTED_MS : backoffMs);
          timer.unref();
          backoffMs = Math.min(backoffMs * 2, REWATCH_MAX_MS);
        });
      };
      open();
      return () => {
        stopped = true;
        clearTimeout(timer);
        call?.cancel();
      };
    },

    close() {
      client?.close();
    },
  };
}
