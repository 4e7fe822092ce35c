/**
 * A TargetClient that sends every call as one message on a long-lived `Stream` rpc (see
 * proto/calculator.proto) instead of one HTTP/2 stream per call: one connection per target, one
 * bidi stream per service on it, many calls in flight on each, matched by call id.
 *
 * What a unary call gave for free is explicit here:
 *  - deadlines: one periodic sweep per client (not a timer per call) fails a call whose deadline
 *    passed as DEADLINE_EXCEEDED and tells the service to drop it (a `cancel` message);
 *    an AbortSignal cancels a call the same way;
 *  - status: a reply's gRPC status and calcmesh code are mapped by fromGrpcError, as unary;
 *  - backpressure: at most `maxInFlight` calls are written and unanswered per stream; further
 *    calls wait (at most `maxWaiting`, then UNAVAILABLE at once) and so does everything while
 *    the stream's write buffer is full;
 *  - breakage: GOAWAY moves new calls to a new stream on a new connection at once, the old
 *    stream may still answer what it has; when a stream ends, is reset or its peer vanishes
 *    (PING keepalive), every call it left unanswered fails UNAVAILABLE (computations are pure,
 *    so the pool may try them elsewhere) and the stream is dialled again;
 *  - a peer that answers UNIMPLEMENTED for `Stream` (a foreign service) is called unary from
 *    then on, through the node:http2 unary client.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type SecureClientSessionOptions } from 'node:http2';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { RPC_NAMES, type ArithmeticOp } from '../shared/operations.js';
import { ERROR_CODE_KEY } from '../domain/wire.js';
import type { CallOptions, TargetClient } from './client.js';
import { fromGrpcError, UpstreamUnavailableError } from './errors.js';
import { createH2TargetClient, type H2Tls } from './h2-client.js';
import { decodeReply, FrameReader, frameCall } from './stream-codec.js';

export interface StreamClientOptions {
  readonly tls?: H2Tls | undefined;
  /** Calls written and not yet answered on one stream (default 1024). */
  readonly maxInFlight?: number;
  /** Calls waiting for room on one stream (default 4096); beyond it a call fails UNAVAILABLE at once. */
  readonly maxWaiting?: number;
  /** The largest reply message accepted (default 4 MiB, as CALC_GRPC_MAX_MESSAGE_BYTES). */
  readonly maxMessageBytes?: number;
  /** How often deadlines are checked (default 5 ms): a call fails at most this much after its deadline. */
  readonly sweepMs?: number;
}

export interface StreamCallOptions extends CallOptions {
  /** Aborting it withdraws the call: it rejects with the signal's reason and the service is told. */
  readonly signal?: AbortSignal;
}

export interface StreamClientStats {
  /** Calls written and unanswered, over every open stream. */
  readonly inFlight: number;
  readonly waiting: number;
  /** Streams opened so far (the first and every re-dial). */
  readonly streamsOpened: number;
  /** True once the peer answered UNIMPLEMENTED for Stream: calls go unary. */
  readonly unary: boolean;
}

export interface StreamTargetClient extends TargetClient {
  arithmetic(op: ArithmeticOp, num1: number, num2: number, options: StreamCallOptions): Promise<number>;
  evaluate(expression: string, options: StreamCallOptions): Promise<number>;
  stats(): StreamClientStats;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const USER_AGENT = 'calcmesh-stream/1';
const RECONNECT_PAUSE_MS = 100;
const KEEPALIVE_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;
const SUSPECT_TIMEOUT_MS = 1_000;
/** Replies are ~20 bytes: a large window spares a WINDOW_UPDATE every few thousand of them. */
const WINDOW_BYTES = 1024 * 1024;

interface Pending {
  readonly id: number;
  readonly method: string;
  readonly num1: number;
  readonly num2: number;
  readonly expression: string;
  readonly deadline: number;
  readonly requestId: string;
  readonly resolve: (value: number) => void;
  readonly reject: (error: Error) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  link: Link | undefined;
}

/** One `Stream` rpc on one connection, and the calls it carries. */
interface Link {
  readonly stream: ClientHttp2Stream;
  readonly session: ClientHttp2Session;
  readonly calls: Map<number, Pending>;
  readonly openedAt: number;
  blocked: boolean;
  ended: boolean;
}

/** The calls of one service (Calculator or Evaluator) to this target. */
interface Channel {
  readonly path: string;
  current: Link | undefined;
  readonly links: Set<Link>;
  readonly waiting: Pending[];
  unary: boolean;
}

const grpcError = (code: GrpcStatus, details: string, errorCode: string | undefined, target: string) => {
  const metadata = new Metadata();
  if (errorCode) metadata.set(ERROR_CODE_KEY, errorCode);
  return fromGrpcError({ code, details, metadata, message: details, name: 'ServiceError' } as ServiceError, target);
};

/** Destroys the session unless it answers a PING in time; its streams then close and their calls fail. */
function probe(session: ClientHttp2Session, timeoutMs: number): void {
  if (session.closed || session.destroyed) return;
  const timer = setTimeout(() => session.destroy(new Error(`no PING answer in ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  try {
    session.ping((error) => {
      clearTimeout(timer);
      if (error) session.destroy(error);
    });
  } catch {
    clearTimeout(timer); // a PING already outstanding, or the session is closing
  }
}

export function createStreamTargetClient(target: string, options: StreamClientOptions = {}): StreamTargetClient {
  const tls = options.tls;
  const authority = `${tls ? 'https' : 'http'}://${target}`;
  const maxInFlight = options.maxInFlight ?? 1024;
  const maxWaiting = options.maxWaiting ?? 4096;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const sweepMs = options.sweepMs ?? 5;
  const channels = {
    calculator: { path: '/calculator.Calculator/Stream', current: undefined, links: new Set(), waiting: [], unary: false } as Channel,
    evaluator: { path: '/calculator.Evaluator/Stream', current: undefined, links: new Set(), waiting: [], unary: false } as Channel,
  };
  let session: ClientHttp2Session | undefined;
  let failedAt = 0;
  let nextId = 0;
  let pendingCount = 0;
  let streamsOpened = 0;
  let sweeper: NodeJS.Timeout | undefined;
  let closed = false;
  let unaryClient: TargetClient | undefined;

  const connect = (): ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const sessionOptions: SecureClientSessionOptions = { settings: { enablePush: false, initialWindowSize: WINDOW_BYTES } };
    if (tls) Object.assign(sessionOptions, { ca: tls.ca ?? undefined, cert: tls.cert ?? undefined, key: tls.key ?? undefined });
    const created = http2.connect(authority, sessionOptions);
    const forget = () => {
      if (session === created) session = undefined;
    };
    created.on('error', () => {
      failedAt = Date.now();
      forget();
    });
    created.on('goaway', () => {
      forget();
      // Let the streams it still has finish, then let go of it: a peer shutting down gracefully
      // (grpc-js tryShutdown) waits for its clients' connections to close.
      created.close();
      // New calls go to a new stream on a new connection now; the old stream answers what it can.
      for (const channel of Object.values(channels)) {
        if (channel.current?.session === created) {
          channel.current = undefined;
          if (channel.waiting.length > 0) pump(channel);
        }
      }
    });
    const keepalive = setInterval(() => probe(created, KEEPALIVE_TIMEOUT_MS), KEEPALIVE_MS);
    keepalive.unref();
    created.on('close', () => {
      clearInterval(keepalive);
      forget();
    });
    created.unref(); // an idle connection never keeps the process alive
    session = created;
    return created;
  };

  const settle = (pending: Pending) => {
    pending.link?.calls.delete(pending.id);
    pending.link = undefined;
    if (pending.onAbort) pending.signal!.removeEventListener('abort', pending.onAbort);
    if (--pendingCount === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  const fail = (pending: Pending, error: Error) => {
    settle(pending);
    pending.reject(error);
  };

  const unavailable = (details: string) => grpcError(GrpcStatus.UNAVAILABLE, details, undefined, target);

  /** The stream ended, was reset or lost its connection: whatever it did not answer fails, and it is dialled again. */
  const breakLink = (channel: Channel, link: Link, details: string) => {
    if (link.ended) return;
    link.ended = true;
    channel.links.delete(link);
    if (channel.current === link) channel.current = undefined;
    if (!link.stream.destroyed) link.stream.close(http2.constants.NGHTTP2_CANCEL);
    if (link.calls.size > 0) {
      const error = unavailable(`${details}`);
      for (const pending of [...link.calls.values()]) fail(pending, error);
    }
    // A stream refused or ended as soon as it opened (a service shutting down) is not dialled in a loop.
    if (Date.now() - link.openedAt < RECONNECT_PAUSE_MS) failedAt = Date.now();
    else if (!closed && !channel.unary && Date.now() - failedAt >= RECONNECT_PAUSE_MS) {
      try {
        channel.current = openLink(channel);
      } catch {
        // dialled again by the next call
      }
    }
    pump(channel);
  };

  const goUnary = (channel: Channel, link: Link) => {
    channel.unary = true;
    link.ended = true;
    channel.links.delete(link);
    if (channel.current === link) channel.current = undefined;
    // Our half of the refused stream is still open: reset it, or the peer counts it as active
    // (a graceful shutdown of the peer would wait for it forever).
    if (!link.stream.destroyed) link.stream.close(http2.constants.NGHTTP2_CANCEL);
    // Nothing was computed (the rpc does not exist there): every call is sent again, unary.
    const moved = [...link.calls.values(), ...channel.waiting.splice(0)];
    for (const pending of moved) {
      settle(pending);
      sendUnary(pending).then(pending.resolve, pending.reject);
    }
  };

  const openLink = (channel: Channel): Link => {
    const used = connect();
    const stream = used.request({
      ':method': 'POST',
      ':path': channel.path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': USER_AGENT,
    });
    streamsOpened++;
    const link: Link = { stream, session: used, calls: new Map(), openedAt: Date.now(), blocked: false, ended: false };
    channel.links.add(link);
    const reader = new FrameReader(maxMessageBytes);
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) return breakLink(channel, link, `HTTP status ${headers[':status']}`);
      const status = headers['grpc-status'];
      if (status === undefined) return; // the stream is open
      if (Number(status) === GrpcStatus.UNIMPLEMENTED) return goUnary(channel, link);
      breakLink(channel, link, `stream refused: ${GrpcStatus[Number(status)] ?? status} ${headers['grpc-message'] ?? ''}`);
    });
    stream.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (message) => {
          const reply = decodeReply(message);
          const pending = link.calls.get(reply.id);
          if (!pending) return; // cancelled or timed out meanwhile
          settle(pending);
          if (reply.code === GrpcStatus.OK) pending.resolve(reply.result);
          else pending.reject(grpcError(reply.code, reply.message, reply.errorCode || undefined, target));
        });
      } catch (error) {
        return breakLink(channel, link, `bad reply: ${(error as Error).message}`);
      }
      if (channel.waiting.length > 0) pump(channel);
    });
    stream.on('trailers', (headers) => {
      const status = Number(headers['grpc-status']);
      if (status === GrpcStatus.UNIMPLEMENTED && link.calls.size > 0) return goUnary(channel, link);
      breakLink(channel, link, `stream ended (${GrpcStatus[status] ?? headers['grpc-status']}: ${headers['grpc-message'] ?? ''})`);
    });
    stream.on('error', (error) => breakLink(channel, link, error.message));
    stream.on('close', () => breakLink(channel, link, `stream closed (code ${stream.rstCode})`));
    stream.on('drain', () => {
      link.blocked = false;
      pump(channel);
    });
    return link;
  };

  const write = (link: Link, pending: Pending) => {
    pending.link = link;
    link.calls.set(pending.id, pending);
    const timeoutMs = Math.max(1, Math.ceil(pending.deadline - Date.now()));
    const frame = frameCall({ id: pending.id, method: pending.method, num1: pending.num1, num2: pending.num2, expression: pending.expression, timeoutMs, requestId: pending.requestId });
    if (!link.stream.write(frame)) link.blocked = true;
  };

  /** Writes waiting calls while the current stream has room. */
  const pump = (channel: Channel) => {
    if (channel.unary) return;
    while (channel.waiting.length > 0) {
      if (!channel.current) {
        if (closed || Date.now() - failedAt < RECONNECT_PAUSE_MS) return;
        try {
          channel.current = openLink(channel);
        } catch (error) {
          const failure = unavailable(`${(error as Error).message}`);
          for (const pending of channel.waiting.splice(0)) fail(pending, failure);
          return;
        }
      }
      const link = channel.current;
      if (link.blocked || link.calls.size >= maxInFlight) return;
      write(link, channel.waiting.shift()!);
    }
  };

  const cancelOnWire = (pending: Pending) => {
    const link = pending.link;
    if (link && !link.ended && !link.stream.destroyed) link.stream.write(frameCall({ id: pending.id, cancel: true }));
  };

  const sweep = () => {
    const now = Date.now();
    for (const channel of Object.values(channels)) {
      for (const link of channel.links) {
        let expired = false;
        for (const pending of link.calls.values()) {
          if (pending.deadline > now) continue;
          cancelOnWire(pending);
          fail(pending, grpcError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded', undefined, target));
          expired = true;
        }
        if (expired) probe(link.session, SUSPECT_TIMEOUT_MS);
      }
      if (channel.waiting.some((p) => p.deadline <= now)) {
        const keep = channel.waiting.filter((p) => p.deadline > now);
        const gone = channel.waiting.filter((p) => p.deadline <= now);
        channel.waiting.splice(0, channel.waiting.length, ...keep);
        for (const pending of gone) fail(pending, grpcError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded (waited for room on the stream)', undefined, target));
      }
    }
  };

  const sendUnary = (pending: Pending): Promise<number> => {
    unaryClient ??= createH2TargetClient(target, tls, { maxMessageBytes });
    const callOptions = { deadline: pending.deadline, requestId: pending.requestId };
    return pending.method === RPC_NAMES.evaluate
      ? unaryClient.evaluate(pending.expression, callOptions)
      : unaryClient.arithmetic(opOf(pending.method), pending.num1, pending.num2, callOptions);
  };

  const call = (channel: Channel, method: string, num1: number, num2: number, expression: string, options: StreamCallOptions) =>
    new Promise<number>((resolve, reject) => {
      if (options.deadline <= Date.now()) {
        reject(new UpstreamUnavailableError(`${target}: no time left before the deadline`, target, GrpcStatus.DEADLINE_EXCEEDED, 'deadline'));
        return;
      }
      if (options.signal?.aborted) {
        reject(options.signal.reason);
        return;
      }
      const pending: Pending = {
        id: (nextId = (nextId + 1) >>> 0),
        method,
        num1,
        num2,
        expression,
        deadline: options.deadline,
        requestId: options.requestId,
        resolve,
        reject,
        signal: options.signal,
        onAbort: undefined,
        link: undefined,
      };
      if (channel.unary || closed) {
        if (closed) reject(unavailable(`client closed`));
        else sendUnary(pending).then(resolve, reject);
        return;
      }
      if (!channel.current && Date.now() - failedAt < RECONNECT_PAUSE_MS) {
        reject(unavailable(`connection failed`));
        return;
      }
      if (channel.waiting.length >= maxWaiting) {
        reject(unavailable(`${maxWaiting} calls already wait for room on the stream`));
        return;
      }
      pendingCount++;
      sweeper ??= setInterval(sweep, sweepMs).unref();
      if (options.signal) {
        const signal = options.signal;
        pending.onAbort = () => {
          const at = channel.waiting.indexOf(pending);
          if (at >= 0) channel.waiting.splice(at, 1);
          cancelOnWire(pending);
          fail(pending, signal.reason);
        };
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      channel.waiting.push(pending);
      pump(channel);
    });

  return {
    target,
    arithmetic: (op, num1, num2, options) => call(channels.calculator, RPC_NAMES[op], num1, num2, '', options),
    evaluate: (expression, options) => call(channels.evaluator, RPC_NAMES.evaluate, 0, 0, expression, options),
    stats: () => {
      let inFlight = 0;
      let waiting = 0;
      for (const channel of Object.values(channels)) {
        waiting += channel.waiting.length;
        for (const link of channel.links) inFlight += link.calls.size;
      }
      return { inFlight, waiting, streamsOpened, unary: channels.calculator.unary || channels.evaluator.unary };
    },
    close() {
      closed = true;
      for (const channel of Object.values(channels)) {
        for (const pending of channel.waiting.splice(0)) fail(pending, unavailable(`client closed`));
        for (const link of [...channel.links]) breakLink(channel, link, 'client closed');
      }
      session?.close();
      session = undefined;
      unaryClient?.close();
    },
  };
}

const OP_BY_RPC = new Map(Object.entries(RPC_NAMES).map(([op, rpc]) => [rpc, op as ArithmeticOp]));
const opOf = (method: string): ArithmeticOp => OP_BY_RPC.get(method)!;
