/**
 * How the Redis queue talks to Redis when Redis is not fine. The gateway calls `enqueue` on its
 * failover path, so a Redis that is down must cost it a fast rejection, never a hang:
 *  - no offline queue: a command issued while disconnected is rejected at once;
 *  - a bounded command timeout for a Redis that accepts connections but does not answer (SIGSTOP);
 *  - commands in flight when the connection drops are rejected, not resent: a resent LPOP could
 *    hand out the same results a second time, and callers can retry what is safe to retry;
 *  - reconnection forever in the background with a capped backoff, so it recovers by itself.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisSettings } from '../shared/config.js';
import { unavailable, type CalcError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

/** Where Redis is: a URL (one server) or the settings of a topology (CALC_REDIS_*). */
export type RedisTarget = string | RedisSettings;

/** A client of one Redis (or of the master behind Sentinel), or of a whole Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface ConnectionSettings {
  /** Upper bound of one command on the shared connection. */
  readonly commandTimeoutMs: number;
  /** How long the first command waits for the very first connection. */
  readonly firstConnectMs: number;
  readonly logger?: Logger | undefined;
}

const MAX_RECONNECT_DELAY_MS = 1000;

export function connectionOptions(settings: ConnectionSettings, name: string): RedisOptions {
  return {
    connectionName: name,
    // RESP2 keeps reply shapes (XREADGROUP, script tables) the same on every Redis version.
    protocol: 2,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: Math.max(settings.commandTimeoutMs, 1000),
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), MAX_RECONNECT_DELAY_MS),
    enableAutoPipelining: true,
    // A consumer's claim of new entries (redis-streams.ts) goes out at once, not a turn of the
    // event loop later with the batch's complete: drain-profile, six pairs, median ~+11 %.
    autoPipeliningIgnoredCommands: ['xreadgroup'],
  };
}

const hostPort = (target: string) => {
  const at = target.lastIndexOf(':');
  return { host: target.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(target.slice(at + 1)) };
};

/**
 * A client of the target's current master. Behind Sentinel, ioredis asks the sentinels where the
 * master is on every (re)connection, and the failover detector drops the connection to the old
 * master as soon as a sentinel announces +switch-master. A demoted master that still answers
 * refuses writes with READONLY: that error also drops the connection (nothing is resent), so the
 * next command goes to the new master.
 */
export function createClient(target: RedisTarget, options: RedisOptions): RedisClient {
  if (typeof target === 'string') return new Redis(target, options);
  if (target.topology === 'standalone') {
    return new Redis(target.url!, { ...(target.password && { password: target.password }), ...options, ...passwordOf(target.url!) });
  }
  if (target.topology === 'sentinel') {
    return new Redis({
      ...options,
      sentinels: target.sentinels!.map(hostPort),
      name: target.master,
      ...(target.password && { password: target.password }),
      ...(target.sentinelPassword && { sentinelPassword: target.sentinelPassword }),
      failoverDetector: true,
      sentinelMaxConnections: 3,
      // A sentinel that accepts connections and never answers must not hold up finding the master.
      sentinelCommandTimeout: options.commandTimeout ?? 1000,
      reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? 1 : false),
    });
  }
  // Redis Cluster: commands go to the master of their slot; when a master dies its commands fail
  // at once (no offline queue), the slot map is refreshed, and its replica takes over.
  const { enableOfflineQueue, retryStrategy, ...nodeOptions } = options;
  return new Cluster(target.nodes!.map(hostPort), {
    enableOfflineQueue: enableOfflineQueue ?? false,
    scaleReads: 'master',
    clusterRetryStrategy: (times) => (retryStrategy ? (retryStrategy(times) ?? MAX_RECONNECT_DELAY_MS) : MAX_RECONNECT_DELAY_MS),
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    slotsRefreshTimeout: options.commandTimeout ?? 1000,
    enableAutoPipelining: options.enableAutoPipelining ?? false,
    redisOptions: { ...nodeOptions, ...(target.password && { password: target.password }) },
  });
}

/** A URL's own password wins over CALC_REDIS_PASSWORD. */
function passwordOf(url: string): RedisOptions {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password ? { password } : {};
  } catch {
    return {};
  }
}

/**
 * The connection for blocking reads (XREADGROUP BLOCK): never shared, so a blocked read delays
 * no other command. No command timeout (it would cut every long block); instead ioredis' own
 * guard resolves a blocked read that outlives its BLOCK by a grace period (a dead socket).
 */
export function blockingOptions(settings: ConnectionSettings, name: string): RedisOptions {
  return {
    ...connectionOptions(settings, name),
    commandTimeout: undefined,
    enableAutoPipelining: false,
    blockingTimeout: 60_000,
    blockingTimeoutGrace: 1000,
  };
}

/** A connection plus the knowledge of whether it ever worked, which decides how long to wait. */
export class Connection {
  private everReady = false;
  private gaveUp = false;
  private firstReady: Promise<void> | undefined;
  private lost = false;
  private closing = false;
  private lastError = '';

  constructor(
    readonly redis: RedisClient,
    private readonly settings: ConnectionSettings,
    label: string,
  ) {
    redis.on('ready', () => {
      if (this.lost) settings.logger?.info({ connection: label }, 'queue: redis connection restored');
      this.everReady = true;
      this.lost = false;
    });
    // Without an 'error' listener ioredis prints every reconnect failure; log only the first.
    redis.on('error', (error: Error) => {
      this.lastError = error.message;
      if (this.lost) return;
      this.lost = true;
      settings.logger?.warn({ connection: label, err: error.message }, 'queue: redis connection lost, reconnecting');
    });
    redis.on('close', () => {
      if (this.everReady && !this.lost && !this.closing) {
        this.lost = true;
        settings.logger?.warn({ connection: label }, 'queue: redis connection closed, reconnecting');
      }
    });
  }

  /**
   * Resolves when commands can be sent. Until the first connection succeeds, callers share one
   * bounded wait (a process that just started); after that, or once that wait ran out, a
   * connection that is not ready rejects at once.
   */
  async ready(): Promise<void> {
    const { redis } = this;
    if (redis.status === 'ready') return;
    if (this.everReady || this.gaveUp || redis.status === 'end') {
      throw unavailable(`queue unavailable: redis connection is ${redis.status}${this.why()}`);
    }
    this.firstReady ??= new Promise<void>((resolve, reject) => {
      const done = (error?: CalcError) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('end', onEnd);
        this.firstReady = undefined;
        if (error) {
          this.gaveUp = true;
          reject(error);
        } else resolve();
      };
      const onReady = () => done();
      const onEnd = () => done(unavailable('queue unavailable: redis connection closed'));
      const timer = setTimeout(
        () => done(unavailable(`queue unavailable: no redis connection after ${this.settings.firstConnectMs} ms${this.why()}`)),
        this.settings.firstConnectMs,
      );
      redis.on('ready', onReady);
      redis.on('end', onEnd);
    });
    return this.firstReady;
  }

  /**
   * A command that timed out leaves its socket suspect: a partition or a hung server, behind
   * which every later command would queue until TCP gives up (minutes). Drop it and connect
   * anew, so the queue answers again as soon as the network does.
   */
  dropIfTimedOut(error: unknown): void {
    if (!(error instanceof Error) || !/timed out/i.test(error.message) || this.redis.status !== 'ready') return;
    this.settings.logger?.warn({ err: error.message }, 'queue: redis command timed out; replacing the connection');
    this.redis.disconnect(true);
  }

  private why(): string {
    return this.lastError ? ` (${this.lastError})` : '';
  }

  close(): void {
    this.closing = true;
    this.redis.disconnect();
  }
}

export const isNoGroup = (error: unknown): boolean => error instanceof Error && error.message.startsWith('NOGROUP');
