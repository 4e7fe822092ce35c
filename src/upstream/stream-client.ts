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
 *  - a defensive peer: a Reply over `maxMessageBytes` (RESOURCE_EXHAUSTED), a message that is
 *    not a Reply, a Reply for an id never sent or answered twice, a non-gRPC content-type, a
 *    non-200 HTTP status (h2-status.ts) or a reset (as grpc-js maps its code), a stream ending
 *    without trailers or with an error status: each ends the stream, and its unanswered calls
 *    fail as that status says — an error answer (UPSTREAM_ERROR), not unavailability, unless the
 *    status is one (503, REFUSED_STREAM, a dropped connection, a stream ended OK or UNAVAILABLE
 *    with calls unanswered). Only an availability failure reports the link down. A Reply with
 *    code 0 and no result field answers nothing: that call fails as a malformed answer;
 *  - backpressure: at most `maxInFlight` calls are written and unanswered per stream; further
 *    calls wait (at most `maxWaiting`, then UNAVAILABLE at once) and so does everything while
 *    the stream's write buffer is full;
 *  - breakage: GOAWAY moves new calls to a new stream on a new connection at once, the old
 *    stream may still answer what it has; when a stream ends, is reset or its peer vanishes
 *    (PING keepalive), every call it left unanswered fails UNAVAILABLE (computations are pure,
 *    so the pool may try them elsewhere) and the stream is dialled again;
 *  - a peer that answers UNIMPLEMENTED (or HTTP 404) for `Stream` (a foreign service) is called
 *    unary from then on, through the node:http2 unary client;
 *  - liveness (`watchLink`): the watched stream is dialled at once and kept open, so its state is
 *    the replica's: `up` when the peer accepted it, `down` when the last open one broke; while
 *    down its port is tried (a bare TCP connect) every LIVENESS_DIAL_MS and dialled once it
 *    accepts, so a replica that comes back is seen within that much of its port accepting.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type SecureClientSessionOptions } from 'node:http2';
import net from 'node:net';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { RPC_NAMES, type ArithmeticOp } from '../shared/operations.js';
import { ERROR_CODE_KEY } from '../domain/index.js';
import type { CallOptions, TargetClient } from './client.js';
import { fromGrpcError, UNAVAILABLE_STATUSES, UpstreamUnavailableError } from './errors.js';
import { createH2TargetClient, type H2Tls } from './h2-client.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './codec.js';
import { fromHttpStatus, fromRstCode, type WireStatus } from './h2-status.js';
import { decodeReply, FrameReader, FramingError, FrameWriter, writeCall } from './stream-codec.js';
import { percentDecoded, probe } from './h2-session.js';


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

/** The watched stream's state: open (the replica serves), or broken with none open in its place. */
export type LinkEvent = 'up' | 'down';

/** Which service's Stream rpc a watch follows. */
export type StreamService = 'calculator' | 'evaluator';

export interface StreamTargetClient extends TargetClient {
  /**
   * Opens the service's stream now and keeps it open, reporting each change of its state.
   * Nothing more is reported once the peer turned out not to serve the Stream rpc (it is called
   * unary: its health and its calls judge it). Returns the function that stops the watch.
   */
  watchLink(service: StreamService, onLink: (event: LinkEvent) => void): () => void;
  arithmetic(op: ArithmeticOp, num1: number, num2: number, options: StreamCallOptions): Promise<number>;
  evaluate(expression: string, options: StreamCallOptions): Promise<number>;
  stats(): StreamClientStats;
}

const USER_AGENT = 'calcmesh-stream/1';
const RECONNECT_PAUSE_MS = 100;
/** How often a watched stream that is down is dialled again: a refused connect on a LAN costs ~0.1 ms. */
const LIVENESS_DIAL_MS = 50;
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
  /** W3C trace context: the Call message carries both (fields 8 and 10). */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
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
  /** Calls (and cancels) framed this turn of the event loop, written together by `flushAll`. */
  readonly out: FrameWriter;
  readonly openedAt: number;
  blocked: boolean;
  ended: boolean;
  /** The peer accepted the stream (HTTP 200, gRPC, no status yet). */
  up: boolean;
  httpStatus: number | undefined;
  /** The stream emitted an error: a CANCEL that follows is the connection's, not ours. */
  dropped: boolean;
  /** Calls withdrawn after they were written: a late Reply may still come for each, once. */
  orphans: number;
}

/** A peer broke the Stream protocol: the stream ends with this status. */
class PeerViolation extends Error {
  constructor(readonly code: GrpcStatus, message: string) {
    super(message);
  }
}

const isGrpcContentType = (value: unknown) => typeof value === 'string' && /^application\/grpc(\+proto)?(;|$)/i.test(value);

/** A status code as sent by a peer: anything outside gRPC's codes is UNKNOWN. */
const wireCode = (raw: unknown): GrpcStatus => {
  const code = Number(raw);
  return Number.isInteger(code) && code >= 0 && code <= 16 ? code : GrpcStatus.UNKNOWN;
};


/** Sessions that failed (reset, not HTTP/2, protocol error): their streams ended because the connection did. */
const brokenSessions = new WeakSet<ClientHttp2Session>();

/** The calls of one service (Calculator or Evaluator) to this target. */
interface Channel {
  readonly path: string;
  current: Link | undefined;
  readonly links: Set<Link>;
  readonly waiting: Pending[];
  unary: boolean;
  /** Set while a watch follows this stream: it is then kept open. */
  onLink: ((event: LinkEvent) => void) | undefined;
  live: boolean;
  dialTimer: NodeJS.Timeout | undefined;
}

const grpcError = (code: GrpcStatus, details: string, errorCode: string | undefined, target: string) => {
  const metadata = new Metadata();
  if (errorCode) metadata.set(ERROR_CODE_KEY, errorCode);
  return fromGrpcError({ code, details, metadata, message: details, name: 'ServiceError' } as ServiceError, target);
};


export function createStreamTargetClient(target: string, options: StreamClientOptions = {}): StreamTargetClient {
  const tls = options.tls;
  const authority = `${tls ? 'https' : 'http'}://${target}`;
  const parsed = new URL(authority);
  const endpoint = { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port || (tls ? 443 : 80)) };
  const maxInFlight = options.maxInFlight ?? 1024;
  const maxWaiting = options.maxWaiting ?? 4096;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const sweepMs = options.sweepMs ?? 5;
  const channel = (path: string): Channel => ({ path, current: undefined, links: new Set(), waiting: [], unary: false, onLink: undefined, live: false, dialTimer: undefined });
  const channels: Record<StreamService, Channel> = { calculator: channel('/calculator.Calculator/Stream'), evaluator: channel('/calculator.Evaluator/Stream') };
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
      brokenSessions.add(created);
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
          else if (channel.onLink) dial(channel);
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

  const markUp = (channel: Channel, link: Link) => {
    link.up = true;
    if (channel.live) return;
    channel.live = true;
    channel.onLink?.('up');
  };

  /**
   * After a stream ended: none of the channel's streams open any more is reported down when the
   * replica did not answer (`availability`); one that answered with an error is alive (its calls
   * fail as error answers, as unary). A watched stream is dialled again.
   */
  const afterEnd = (channel: Channel, availability: boolean) => {
    if (channel.live && ![...channel.links].some((l) => l.up)) {
      channel.live = false;
      if (availability) channel.onLink?.('down');
    }
    if (!channel.current) scheduleDial(channel);
  };

  /** Opens the channel's stream now unless one is open or being opened. */
  const dial = (channel: Channel) => {
    if (closed || channel.unary || channel.current) return;
    try {
      channel.current = openLink(channel);
    } catch {
      scheduleDial(channel);
    }
  };

  const scheduleDial = (channel: Channel) => {
    if (!channel.onLink || channel.dialTimer || closed || channel.unary || channel.current) return;
    channel.dialTimer = setTimeout(() => {
      channel.dialTimer = undefined;
      probeThenDial(channel);
    }, LIVENESS_DIAL_MS);
    channel.dialTimer.unref();
  };

  /**
   * While a watched replica is away, its port is asked with a bare TCP connect first: a refused
   * one costs a socket, where an HTTP/2 dial costs a session, a stream and their error events
   * (~1.5 µs of every direct request's CPU at 25k req/s with four services away). Only a port
   * that accepts is dialled for real.
   */
  const probeThenDial = (channel: Channel) => {
    if (closed || !channel.onLink || channel.current) return;
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    socket.unref();
    socket.once('connect', () => {
      socket.destroy();
      dial(channel);
    });
    socket.once('error', () => {
      socket.destroy();
      scheduleDial(channel);
    });
  };

  /**
   * The stream ended, was reset or lost its connection: whatever it did not answer fails with
   * `status` (UNAVAILABLE: may be tried elsewhere; any other: an error answer), and it is dialled again.
   */
  const breakLink = (channel: Channel, link: Link, status: WireStatus) => {
    if (link.ended) return;
    link.ended = true;
    const wasCurrent = channel.current === link;
    channel.links.delete(link);
    if (wasCurrent) channel.current = undefined;
    if (!link.stream.destroyed) link.stream.close(http2.constants.NGHTTP2_CANCEL);
    const availability = UNAVAILABLE_STATUSES.has(status.code);
    if (link.calls.size > 0) {
      const error = grpcError(status.code, status.details, undefined, target);
      for (const pending of [...link.calls.values()]) fail(pending, error);
    }
    // A stream that failed as soon as it opened is not dialled again at once (a service shutting
    // down, or a peer that fails every stream): a watch dials it every LIVENESS_DIAL_MS, calls
    // dial it. Only when it was unavailable do calls fail at once for a moment instead.
    if (Date.now() - link.openedAt < RECONNECT_PAUSE_MS) {
      if (availability && wasCurrent) failedAt = Date.now();
    } else if (!closed && !channel.unary && Date.now() - failedAt >= RECONNECT_PAUSE_MS) {
      try {
        channel.current = openLink(channel);
      } catch {
        // dialled again by the next call, or by the watch
      }
    }
    pump(channel);
    afterEnd(channel, availability);
  };

  const goUnary = (channel: Channel, link: Link) => {
    channel.unary = true;
    link.ended = true;
    channel.links.delete(link);
    if (channel.current === link) channel.current = undefined;
    // Our half of the refused stream is still open: reset it, or the peer counts it as active
    // (a graceful shutdown of the peer would wait for it forever).
    if (!link.stream.destroyed) link.stream.close(http2.constants.NGHTTP2_CANCEL);
    // Liveness is no longer this stream's to tell: the replica's health and calls judge it.
    clearTimeout(channel.dialTimer);
    channel.dialTimer = undefined;
    channel.onLink = undefined;
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
    const link: Link = { stream, session: used, calls: new Map(), out: new FrameWriter(), openedAt: Date.now(), blocked: false, ended: false, up: false, httpStatus: undefined, dropped: false, orphans: 0 };
    channel.links.add(link);
    const reader = new FrameReader(maxMessageBytes);
    const onReply = (buffer: Buffer, start: number, end: number) => {
      if (link.ended) return;
      let reply;
      try {
        reply = decodeReply(buffer, start, end);
      } catch (error) {
        throw new PeerViolation(GrpcStatus.INTERNAL, `Reply parsing error: ${(error as Error).message}`);
      }
      const pending = link.calls.get(reply.id);
      if (!pending) {
        // A late answer to a call withdrawn meanwhile; any other is a Reply to nothing (endless, or twice).
        if (link.orphans === 0) throw new PeerViolation(GrpcStatus.INTERNAL, `Reply for call id ${reply.id}, which is not in flight`);
        link.orphans--;
        return;
      }
      settle(pending);
      if (reply.code !== GrpcStatus.OK) pending.reject(grpcError(wireCode(reply.code), reply.message, reply.errorCode || undefined, target));
      else if (reply.hasResult) pending.resolve(reply.result);
      else pending.reject(grpcError(GrpcStatus.INTERNAL, 'Reply with neither a result nor an error status', undefined, target));
    };
    stream.on('response', (headers) => {
      link.httpStatus = Number(headers[':status']);
      if (link.httpStatus !== 200) {
        const mapped = fromHttpStatus(link.httpStatus);
        return mapped.code === GrpcStatus.UNIMPLEMENTED ? goUnary(channel, link) : breakLink(channel, link, mapped);
      }
      if (!isGrpcContentType(headers['content-type'])) {
        return breakLink(channel, link, { code: GrpcStatus.UNKNOWN, details: `unexpected content-type ${JSON.stringify(String(headers['content-type']).slice(0, 64))}` });
      }
      const status = headers['grpc-status'];
      if (status === undefined) return markUp(channel, link); // the stream is open
      if (wireCode(status) === GrpcStatus.UNIMPLEMENTED) return goUnary(channel, link);
      breakLink(channel, link, { code: wireCode(status), details: `stream refused: ${percentDecoded(headers['grpc-message'])}` });
    });
    stream.on('data', (chunk: Buffer) => {
      if (link.ended) return;
      try {
        reader.push(chunk, onReply);
      } catch (error) {
        const code = error instanceof PeerViolation ? error.code : error instanceof FramingError && /exceeds/.test(error.message) ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL;
        return breakLink(channel, link, { code, details: (error as Error).message });
      }
      if (channel.waiting.length > 0) pump(channel);
    });
    stream.on('trailers', (headers) => {
      const raw = headers['grpc-status'];
      const status = raw === undefined ? GrpcStatus.UNKNOWN : wireCode(raw);
      if (status === GrpcStatus.UNIMPLEMENTED && link.calls.size > 0) return goUnary(channel, link);
      const details = raw === undefined ? 'No status information received' : `stream ended: ${GrpcStatus[status]} ${percentDecoded(headers['grpc-message'])}`;
      // Ended OK with calls in flight: they were not answered (the peer stopped), so they may go elsewhere.
      breakLink(channel, link, { code: status === GrpcStatus.OK ? GrpcStatus.UNAVAILABLE : status, details });
    });
    // The peer's half ended with no trailers (they come first): our half is still open, so no 'close' would tell.
    // An aborted one (its connection went) is judged by 'close', which follows.
    stream.on('end', () => {
      if (stream.aborted || used.destroyed || brokenSessions.has(used)) return;
      breakLink(channel, link, fromRstCode(http2.constants.NGHTTP2_NO_ERROR, link.httpStatus, false));
    });
    stream.on('error', () => (link.dropped = true)); // 'close' follows with the stream's code
    stream.on('close', () => {
      if (link.ended) return;
      // A connection that failed or went away under the stream lost the replica, not the calls.
      if (brokenSessions.has(used) || used.destroyed) return breakLink(channel, link, { code: GrpcStatus.UNAVAILABLE, details: 'Connection dropped' });
      breakLink(channel, link, fromRstCode(stream.rstCode ?? 0, link.httpStatus, link.dropped));
    });
    stream.on('drain', () => {
      link.blocked = false;
      pump(channel);
    });
    return link;
  };

  /**
   * Calls are batched per turn of the event loop: those made in one turn (the requests of one
   * read of every socket) go in one write, one DATA frame, instead of one each. The write
   * buffer's state (`blocked`) is known once written; `maxInFlight` bounds what waits here.
   */
  const dirty = new Set<Link>();
  let flushing: NodeJS.Immediate | undefined;

  const flushAll = () => {
    flushing = undefined;
    for (const link of dirty) {
      const chunk = link.out.take();
      if (!chunk || link.ended || link.stream.destroyed) continue;
      if (!link.stream.write(chunk)) link.blocked = true;
    }
    dirty.clear();
  };

  const dirtied = (link: Link) => {
    dirty.add(link);
    flushing ??= setImmediate(flushAll);
  };

  const write = (link: Link, pending: Pending) => {
    pending.link = link;
    link.calls.set(pending.id, pending);
    const timeoutMs = Math.max(1, Math.ceil(pending.deadline - Date.now()));
    writeCall(link.out, { id: pending.id, method: pending.method, num1: pending.num1, num2: pending.num2, expression: pending.expression, timeoutMs, requestId: pending.requestId, traceparent: pending.traceparent ?? '', tracestate: pending.tracestate ?? '' });
    dirtied(link);
  };

  /** Writes waiting calls while the current stream has room. */
  const pump = (channel: Channel) => {
    if (channel.unary) return;
    while (channel.waiting.length > 0) {
      if (!channel.current) {
        // A watched stream is dialled by its calls too: the first call after a replica's return is not failed for a dial that failed before it.
        if (closed || (!channel.onLink && Date.now() - failedAt < RECONNECT_PAUSE_MS)) return;
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
    if (link && !link.ended && !link.stream.destroyed) {
      link.orphans++;
      writeCall(link.out, { id: pending.id, cancel: true });
      dirtied(link);
    }
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
    const callOptions = { deadline: pending.deadline, requestId: pending.requestId, traceparent: pending.traceparent, tracestate: pending.tracestate };
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
        traceparent: options.traceparent,
        tracestate: options.tracestate,
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
      if (!channel.current && !channel.onLink && Date.now() - failedAt < RECONNECT_PAUSE_MS) {
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
    watchLink(service, onLink) {
      const watched = channels[service];
      if (watched.unary) return () => undefined;
      watched.onLink = onLink;
      if (watched.live) onLink('up');
      dial(watched);
      return () => {
        if (watched.onLink !== onLink) return;
        watched.onLink = undefined;
        clearTimeout(watched.dialTimer);
        watched.dialTimer = undefined;
      };
    },
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
        channel.onLink = undefined;
        clearTimeout(channel.dialTimer);
        for (const pending of channel.waiting.splice(0)) fail(pending, unavailable(`client closed`));
        for (const link of [...channel.links]) breakLink(channel, link, { code: GrpcStatus.UNAVAILABLE, details: 'client closed' });
      }
      session?.close();
      session = undefined;
      unaryClient?.close();
    },
  };
}

const OP_BY_RPC = new Map(Object.entries(RPC_NAMES).map(([op, rpc]) => [rpc, op as ArithmeticOp]));
const opOf = (method: string): ArithmeticOp => OP_BY_RPC.get(method)!;
