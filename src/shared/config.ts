/**
 * Configuration, read once at the edge. This file is the only place in calcmesh that knows the
 * names of environment variables: `loadConfig(env)` for the servers, `loadClientSettings(env)` for
 * the CLI's client commands; everything else takes the frozen objects they return. (With tracing
 * on, the OpenTelemetry SDK also reads its own standard OTEL_* variables: see shared/tracing.ts.)
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { invalidArgument } from './errors.js';
import { DEFAULT_PORTS, SERVICE_OPS, type ServiceOp } from './operations.js';

/**
 * Every default, by the variable that overrides it: the one literal the configuration, the CLI's
 * help and the README's table are checked against (test/unit/config.test.ts).
 */
export const DEFAULTS = Object.freeze({
  CALC_GATEWAY_PORT: 8000,
  CALC_DRAIN_GRACE_MS: 500,
  CALC_OUTBOX_MAX: 100_000,
  CALC_DEADLINE_MS: 1000,
  CALC_AUTH_FAILURES_PER_MIN: 20,
  CALC_MAX_CONNECTIONS: 800,
  CALC_KEEPALIVE_TIMEOUT_MS: 5000,
  CALC_HEADERS_TIMEOUT_MS: 10_000,
  CALC_RESULT_TTL_S: 86_400,
  CALC_LEASE_MS: 30_000,
  CALC_EVAL_QUEUED_BUDGET_MS: 30_000,
  CALC_MAX_DELIVERIES: 5,
  CALC_DRAIN_CONCURRENCY: 512,
  CALC_BREAKER_FAILURES: 3,
  CALC_BREAKER_HALF_OPEN_MS: 2000,
  CALC_GRPC_MAX_MESSAGE_BYTES: 4 * 1024 * 1024,
  CALC_EVAL_MAX_INFLIGHT: 64,
  CALC_WEBHOOK_ATTEMPTS: 8,
  CALC_WEBHOOK_RETRY_MS: 1000,
  CALC_WEBHOOK_TIMEOUT_MS: 5000,
  CALC_EVENTS_HEARTBEAT_MS: 15_000,
  CALC_EVENTS_POLL_MS: 250,
  CALC_EVENTS_MAX_STREAMS: 1000,
  CALC_REDIS_MIN_REPLICAS: 0,
  CALC_QUEUE_PARTITIONS: 1,
  CALC_OUTBOX: 'on',
  CALC_GRPC_CLIENT: 'stream',
  CALC_GATEWAY_HOST: '127.0.0.1',
  CALC_SERVICE_HOST: '0.0.0.0',
  LOG_LEVEL: 'info',
  CALC_REDIS_MASTER: 'mymaster',
  /** Where the CLI's client commands find the gateway (CALC_GATEWAY_URL, --gateway). */
  CALC_GATEWAY_URL: 'http://127.0.0.1:8000',
} as const);

export interface Config {
  readonly gateway: { readonly host: string; readonly port: number };
  /** `host:port` replicas of each service, as the gateway and the evaluator see them. */
  readonly targets: Readonly<Record<ServiceOp, readonly string[]>>;
  /** Where one service listens; `port` undefined means the operation's default port. */
  readonly service: {
    readonly host: string;
    readonly port: number | undefined;
    /** After reporting NOT_SERVING on a planned stop, how long to keep serving while callers move away. */
    readonly drainGraceMs: number;
    /** The service's /metrics port; undefined means its gRPC port + 1000, -1 turns it off. */
    readonly metricsPort: number | undefined;
  };
  readonly redisUrl: string | undefined;
  /** The Redis the queue uses (one of three topologies); undefined: the embedded SQLite queue. */
  readonly redis: RedisSettings | undefined;
  /** The gateway's local journal for requests Redis could not take (only with Redis). */
  readonly outbox: { readonly enabled: boolean; readonly max: number };
  /** Where the embedded queue keeps its file (and the gateway its outbox); by default the user's state directory, never the cwd. */
  readonly dataDir: string;
  /** The Unix socket on which `calcmesh up` takes `calcmesh restart <name>`. */
  readonly controlSocket: string;
  readonly deadlineMs: number;
  /** API key -> client name; empty when authentication is off. */
  readonly apiKeys: ReadonlyMap<string, string>;
  /** Operator key -> operator name (CALC_ADMIN_KEYS): sees every client's activity, may call operator routes. */
  readonly adminKeys: ReadonlyMap<string, string>;
  /** Failed authentication attempts per source address and minute before the address is refused for the minute. */
  readonly authFailuresPerMin: number;
  /** The gateway's HTTP server: connection cap and timeouts (see README, Security). */
  readonly http: {
    readonly maxConnections: number;
    readonly keepAliveTimeoutMs: number;
    readonly headersTimeoutMs: number;
  };
  readonly resultTtlS: number;
  readonly leaseMs: number;
  /**
   * The time budget of all the calls of one queued expression. Independent of leaseMs: the
   * evaluator's heartbeat keeps its lease for as long as the expression runs.
   */
  readonly evalQueuedBudgetMs: number;
  readonly maxDeliveries: number;
  readonly drainConcurrency: number;
  readonly rateLimit: number | undefined;
  readonly breaker: {
    /** Consecutive availability failures that open a replica's circuit. */
    readonly failureThreshold: number;
    /** How long a circuit stays open before a health probe may close it. */
    readonly halfOpenAfterMs: number;
  };
  readonly logLevel: string;
  /** The client of forwarded calls: the lean node:http2 one, grpc-js, or one multiplexed Stream rpc per replica. */
  readonly grpcClient: 'h2' | 'grpc-js' | 'stream';
  /** The largest gRPC message accepted from a peer (CALC_GRPC_MAX_MESSAGE_BYTES). */
  readonly grpcMaxMessageBytes: number;
  /** Calls one expression may have in flight at once (CALC_EVAL_MAX_INFLIGHT). */
  readonly evalMaxInflight: number;
  /** Operations whose services do not consume the queue: `calcmesh up` runs a relay for each (CALC_RELAY). */
  readonly relay: readonly ServiceOp[];
  /** PEM files for gRPC TLS; all undefined means plaintext. */
  readonly tls: { readonly certFile?: string; readonly keyFile?: string; readonly caFile?: string };
  readonly webhooks: {
    /** HMAC key of Calcmesh-Signature; undefined turns webhooks off (a Callback-Url is then 400). */
    readonly secret: string | undefined;
    /** `host` or `host:port` a callback may name; nothing else is ever called. */
    readonly allow: readonly string[];
    readonly maxAttempts: number;
    /** Wait before the second attempt, doubling after each failure (at most 60 s). */
    readonly retryMs: number;
    /** One POST's time limit. */
    readonly timeoutMs: number;
  };
  readonly events: {
    /** A comment line this often keeps proxies from closing an idle event stream. */
    readonly heartbeatMs: number;
    /** How often an open stream looks for new completions. */
    readonly pollMs: number;
    /** Open event streams one gateway serves at most; more are 503. */
    readonly maxStreams: number;
  };
  /**
   * OpenTelemetry export: on when an OTLP endpoint is set (and OTEL_SDK_DISABLED is not true).
   * Only the switch is read here; the SDK reads its other standard OTEL_* variables itself.
   */
  readonly tracing: { readonly endpoint: string | undefined };
}

/** CALC_REDIS_URL, CALC_REDIS_SENTINELS or CALC_REDIS_CLUSTER: exactly one names where Redis is. */
export interface RedisSettings {
  readonly topology: 'standalone' | 'sentinel' | 'cluster';
  /** standalone: the URL (its password wins over `password`). */
  readonly url?: string;
  /** sentinel: `host:port` of the sentinels, and the name of the master they watch. */
  readonly sentinels?: readonly string[];
  readonly master: string;
  /** cluster: `host:port` seed nodes. */
  readonly nodes?: readonly string[];
  readonly password?: string;
  readonly sentinelPassword?: string;
  /** Replicas that must have a write (WAIT) before it is confirmed; 0: the master's word is enough. */
  readonly minReplicas: number;
  /** Hash tags each operation's queue is split over (Cluster). */
  readonly partitions: number;
}

export type Env = Readonly<Record<string, string | undefined>>;

export function loadConfig(env: Env): Config {
  const targets = {} as Record<ServiceOp, readonly string[]>;
  for (const op of SERVICE_OPS) {
    const name = `CALC_${op.toUpperCase()}_TARGETS`;
    targets[op] = Object.freeze(parseTargets(env[name] ?? `127.0.0.1:${DEFAULT_PORTS[op]}`, name));
  }
  const dataDir = env.CALC_DATA_DIR || defaultDataDir(env);
  return deepFreeze({
    gateway: {
      host: env.CALC_GATEWAY_HOST || DEFAULTS.CALC_GATEWAY_HOST,
      port: int(env, 'CALC_GATEWAY_PORT', 0, 65535),
    },
    targets,
    service: {
      host: env.CALC_SERVICE_HOST || DEFAULTS.CALC_SERVICE_HOST,
      port: optionalInt(env, 'CALC_SERVICE_PORT', 0, 65535),
      drainGraceMs: int(env, 'CALC_DRAIN_GRACE_MS', 0, 60_000),
      metricsPort: optionalInt(env, 'CALC_METRICS_PORT', -1, 65535),
    },
    redisUrl: env.CALC_REDIS_URL || undefined,
    redis: redisSettings(env),
    outbox: {
      enabled: oneOf(env, 'CALC_OUTBOX', ['on', 'off'] as const) === 'on',
      max: int(env, 'CALC_OUTBOX_MAX', 1, 100_000_000),
    },
    dataDir,
    controlSocket: env.CALC_CONTROL_SOCKET || join(dataDir, 'up.sock'),
    deadlineMs: int(env, 'CALC_DEADLINE_MS', 1, 600_000),
    apiKeys: parseApiKeys(env.CALC_API_KEYS, 'CALC_API_KEYS'),
    authFailuresPerMin: int(env, 'CALC_AUTH_FAILURES_PER_MIN', 1, 1_000_000),
    http: {
      // Below the common `ulimit -n 1024`, leaving room for the queue, gRPC and log descriptors.
      maxConnections: int(env, 'CALC_MAX_CONNECTIONS', 1, 1_000_000),
      keepAliveTimeoutMs: int(env, 'CALC_KEEPALIVE_TIMEOUT_MS', 100, 600_000),
      headersTimeoutMs: int(env, 'CALC_HEADERS_TIMEOUT_MS', 100, 600_000),
    },
    resultTtlS: int(env, 'CALC_RESULT_TTL_S', 1, 365 * 86_400),
    leaseMs: int(env, 'CALC_LEASE_MS', 100, 3_600_000),
    evalQueuedBudgetMs: int(env, 'CALC_EVAL_QUEUED_BUDGET_MS', 100, 3_600_000),
    maxDeliveries: int(env, 'CALC_MAX_DELIVERIES', 1, 1000),
    drainConcurrency: int(env, 'CALC_DRAIN_CONCURRENCY', 1, 10_000),
    breaker: {
      failureThreshold: int(env, 'CALC_BREAKER_FAILURES', 1, 1000),
      halfOpenAfterMs: int(env, 'CALC_BREAKER_HALF_OPEN_MS', 10, 600_000),
    },
    rateLimit: optionalInt(env, 'CALC_RATE_LIMIT', 1, 10_000_000),
    logLevel: env.LOG_LEVEL || DEFAULTS.LOG_LEVEL,
    grpcClient: oneOf(env, 'CALC_GRPC_CLIENT', ['h2', 'grpc-js', 'stream'] as const),
    grpcMaxMessageBytes: int(env, 'CALC_GRPC_MAX_MESSAGE_BYTES', 1024, 1024 * 1024 * 1024),
    evalMaxInflight: int(env, 'CALC_EVAL_MAX_INFLIGHT', 1, 100_000),
    relay: parseOps(env.CALC_RELAY, 'CALC_RELAY'),
    tls: { certFile: env.CALC_TLS_CERT || undefined, keyFile: env.CALC_TLS_KEY || undefined, caFile: env.CALC_TLS_CA || undefined },
    adminKeys: parseAdminKeys(env.CALC_ADMIN_KEYS),
    webhooks: {
      secret: env.CALC_WEBHOOK_SECRET || undefined,
      allow: parseAllow(env.CALC_WEBHOOK_ALLOW),
      maxAttempts: int(env, 'CALC_WEBHOOK_ATTEMPTS', 1, 100),
      retryMs: int(env, 'CALC_WEBHOOK_RETRY_MS', 10, 600_000),
      timeoutMs: int(env, 'CALC_WEBHOOK_TIMEOUT_MS', 100, 60_000),
    },
    events: {
      heartbeatMs: int(env, 'CALC_EVENTS_HEARTBEAT_MS', 100, 600_000),
      pollMs: int(env, 'CALC_EVENTS_POLL_MS', 10, 10_000),
      maxStreams: int(env, 'CALC_EVENTS_MAX_STREAMS', 1, 100_000),
    },
    tracing: { endpoint: tracingEndpoint(env) },
  });
}

/**
 * `$XDG_STATE_HOME/calcmesh`, else `~/.local/state/calcmesh` (the XDG base directory spec): the
 * same for every process of one user, whatever folder it was started from, so that a gateway
 * and a service started apart never use two queues without knowing.
 */
function defaultDataDir(env: Env): string {
  const state = env.XDG_STATE_HOME;
  if (state && isAbsolute(state)) return join(state, 'calcmesh');
  return join(env.HOME || homedir(), '.local', 'state', 'calcmesh');
}

/** What the CLI's client commands take from the environment; their flags win over it. */
export interface ClientSettings {
  readonly gatewayUrl: string;
  readonly apiKey: string | undefined;
  /** The operator key of `calcmesh dlq` (CALC_ADMIN_KEY), else the client key. */
  readonly adminKey: string | undefined;
  /** Colours on a terminal, unless NO_COLOR is set (no-color.org). */
  readonly colour: boolean;
}

export function loadClientSettings(env: Env): ClientSettings {
  return Object.freeze({
    gatewayUrl: env.CALC_GATEWAY_URL || DEFAULTS.CALC_GATEWAY_URL,
    apiKey: env.CALC_API_KEY || undefined,
    adminKey: env.CALC_ADMIN_KEY || undefined,
    colour: !env.NO_COLOR,
  });
}

function parseTargets(raw: string, name: string): string[] {
  const list = raw.split(',').map((t) => t.trim()).filter(Boolean);
  if (list.length === 0) throw invalidArgument(`${name} lists no host:port`);
  for (const target of list) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(target);
    if (!match || Number(match[2]) > 65535) throw invalidArgument(`${name}: ${JSON.stringify(target)} is not host:port`);
  }
  return list;
}

const TOPOLOGY_VARIABLES = ['CALC_REDIS_URL', 'CALC_REDIS_SENTINELS', 'CALC_REDIS_CLUSTER'] as const;

function redisSettings(env: Env): RedisSettings | undefined {
  const set = TOPOLOGY_VARIABLES.filter((name) => env[name]);
  if (set.length > 1) throw invalidArgument(`set only one of ${set.join(' and ')}: each names a different Redis topology`);
  const common = {
    master: env.CALC_REDIS_MASTER || DEFAULTS.CALC_REDIS_MASTER,
    ...(env.CALC_REDIS_PASSWORD ? { password: env.CALC_REDIS_PASSWORD } : {}),
    ...(env.CALC_REDIS_SENTINEL_PASSWORD ? { sentinelPassword: env.CALC_REDIS_SENTINEL_PASSWORD } : {}),
    minReplicas: int(env, 'CALC_REDIS_MIN_REPLICAS', 0, 100),
    partitions: int(env, 'CALC_QUEUE_PARTITIONS', 1, 1024),
  };
  if (env.CALC_REDIS_URL) return { topology: 'standalone', url: env.CALC_REDIS_URL, ...common };
  if (env.CALC_REDIS_SENTINELS) return { topology: 'sentinel', sentinels: parseTargets(env.CALC_REDIS_SENTINELS, 'CALC_REDIS_SENTINELS'), ...common };
  if (env.CALC_REDIS_CLUSTER) {
    // WAIT goes to the node that took the write; in Cluster that routing is not built yet.
    if (common.minReplicas > 0) throw invalidArgument('CALC_REDIS_MIN_REPLICAS is not supported with CALC_REDIS_CLUSTER yet; set it to 0');
    return { topology: 'cluster', nodes: parseTargets(env.CALC_REDIS_CLUSTER, 'CALC_REDIS_CLUSTER'), ...common };
  }
  return undefined;
}

function parseOps(raw: string | undefined, name: string): ServiceOp[] {
  const ops = (raw ?? '').split(',').map((op) => op.trim()).filter(Boolean);
  for (const op of ops) {
    if (!(SERVICE_OPS as readonly string[]).includes(op)) throw invalidArgument(`${name}: ${JSON.stringify(op)} is not one of ${SERVICE_OPS.join(', ')}`);
  }
  return [...new Set(ops)] as ServiceOp[];
}

function parseApiKeys(raw: string | undefined, name: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const pair of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = pair.indexOf(':');
    if (at <= 0 || at === pair.length - 1) throw invalidArgument(`${name}: expected key:name[,key:name…]`);
    keys.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return keys;
}

/** `key[:name],…`: an operator key, and the name it goes by in logs (the key's position by default). */
function parseAdminKeys(raw: string | undefined): Map<string, string> {
  const keys = new Map<string, string>();
  for (const [i, pair] of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean).entries()) {
    const at = pair.indexOf(':');
    const key = at < 0 ? pair : pair.slice(0, at);
    if (key === '' || at === pair.length - 1) throw invalidArgument('CALC_ADMIN_KEYS: expected key[:name][,key[:name]…]');
    keys.set(key, at < 0 ? `operator-${i + 1}` : pair.slice(at + 1));
  }
  return keys;
}

/** `host[:port],…`, lower-cased; a bracketed IPv6 address keeps its brackets. */
function parseAllow(raw: string | undefined): string[] {
  const list = (raw ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  for (const entry of list) {
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/.test(entry)) throw invalidArgument(`CALC_WEBHOOK_ALLOW: ${JSON.stringify(entry)} is not host[:port]`);
  }
  return list;
}

/** The OTLP endpoint that turns tracing on; the exporter speaks OTLP/HTTP with JSON, nothing else. */
function tracingEndpoint(env: Env): string | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
  if (!endpoint || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== 'http/json') {
    throw invalidArgument(`OTEL_EXPORTER_OTLP_PROTOCOL must be http/json (calcmesh exports OTLP/HTTP with JSON), got ${JSON.stringify(protocol)}`);
  }
  try {
    new URL(endpoint);
  } catch {
    throw invalidArgument(`OTEL_EXPORTER_OTLP_ENDPOINT is not a URL: ${JSON.stringify(endpoint)}`);
  }
  return endpoint;
}

type IntName = { [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends number ? K : never }[keyof typeof DEFAULTS];

function int(env: Env, name: IntName, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return DEFAULTS[name];
  return wholeNumber(raw, name, min, max);
}

/** A whole-number setting without a default: undefined when unset. */
function optionalInt(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : wholeNumber(raw, name, min, max);
}

function wholeNumber(raw: string, name: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: 'CALC_OUTBOX' | 'CALC_GRPC_CLIENT', allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return DEFAULTS[name] as T;
  if (!(allowed as readonly string[]).includes(raw)) throw invalidArgument(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object' && !(child instanceof Map)) deepFreeze(child);
  }
  return Object.freeze(value);
}
