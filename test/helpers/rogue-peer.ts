/**
 * A misbehaving gRPC peer: a plain node:http2 server that answers `calculator.Calculator` calls
 * the way broken, hostile or foreign servers do. `mode` is how it answers the unary rpcs;
 * `streamMode` how it serves the multiplexed Stream rpc: 'unimplemented' (the default, as a
 * server of the original proto), or one of the bad ways in StreamRogueMode. Both are
 * changeable between calls; `bytesSent` counts what it managed to write, so a test can tell how
 * much it pushed; `streams` counts Stream requests, so a test can tell how often it was dialled.
 * Health (grpc.health.v1) is UNIMPLEMENTED, as in the original Python services.
 */
import http2, { type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { decodeCall, FrameReader, frameReply, type StreamCall } from '../../src/upstream/stream-codec.js';

export type RogueMode =
  | 'ok' // a correct answer: num1 + num2
  | 'oversized' // declares a 1 GiB message and streams it
  | 'max-message' // one message exactly at the client's limit, but not a result (no field 1)
  | 'endless' // a correct message, then more messages forever
  | 'wrong-content-type' // 200 text/html, a page, no gRPC status
  | 'http-500'
  | 'http-503'
  | 'http-404'
  | 'rst-internal' // RST_STREAM INTERNAL_ERROR after the headers
  | 'rst-refused' // RST_STREAM REFUSED_STREAM before any answer
  | 'missing-trailers' // a correct message, then END_STREAM without trailers
  | 'garbage-frames' // bytes that are not HTTP/2 on the connection
  | 'slow-drip' // a correct answer, one byte every 200 ms
  | 'goaway' // a correct answer, then GOAWAY on its session
  | 'no-result-field' // a message with field 2 only
  | 'huge-message' // grpc-status 13 with a 60 KiB percent-encoded grpc-message
  | 'claims-auth'; // an error carrying calc-error-code UNAUTHENTICATED

/** How the Stream rpc is served: a bad mode acts on the request itself, on the first Call, or (bad Replies) on each. */
export type StreamRogueMode =
  | 'unimplemented' // trailers-only UNIMPLEMENTED, as a server of the original proto
  | 'ok' // a Reply with num1 + num2 for each Call
  | 'oversized' // declares a 1 GiB Reply and streams it
  | 'unknown-ids' // Replies for call ids never sent, forever
  | 'garbage-message' // a frame whose message is not protobuf
  | 'wrong-content-type' // 200 text/html, a page
  | 'http-500'
  | 'http-503'
  | 'http-404'
  | 'rst-internal' // RST_STREAM INTERNAL_ERROR when the Call arrives
  | 'rst-refused' // RST_STREAM REFUSED_STREAM before any answer
  | 'missing-trailers' // END_STREAM without trailers, the Call unanswered
  | 'ended-ok-unanswered' // trailers grpc-status 0 with the Call unanswered
  | 'ended-internal' // trailers grpc-status 13 with the Call unanswered
  | 'no-result-field' // a Reply with the call's id only: neither result nor status
  | 'claims-auth' // a Reply with code 16 and calc-error-code UNAUTHENTICATED
  | 'slow-drip' // a correct Reply, one byte every 200 ms
  | 'goaway' // GOAWAY when the Call arrives, then its Reply and the stream's end (graceful)
  | 'goaway-drop'; // GOAWAY when the Call arrives, then the connection closes unanswered

export interface RoguePeer {
  readonly target: string;
  mode: RogueMode;
  streamMode: StreamRogueMode;
  /** The client's receive limit, for 'max-message'. */
  maxMessageBytes: number;
  readonly bytesSent: () => number;
  readonly calls: () => number;
  readonly streams: () => number;
  /** Calls received on Stream rpcs. */
  readonly streamCalls: () => number;
  close(): Promise<void>;
}

const GRPC = { ':status': 200, 'content-type': 'application/grpc' };

function resultMessage(value: number): Buffer {
  const frame = Buffer.alloc(5 + 9);
  frame.writeUInt32BE(9, 1);
  frame[5] = 0x09;
  frame.writeDoubleLE(value, 6);
  return frame;
}

function operands(body: Buffer): [number, number] {
  // Our own request frames: prefix, 0x09 num1, 0x11 num2 (absent fields are zero).
  let a = 0;
  let b = 0;
  for (let at = 5; at + 9 <= body.length; at += 9) {
    if (body[at] === 0x09) a = body.readDoubleLE(at + 1);
    if (body[at] === 0x11) b = body.readDoubleLE(at + 1);
  }
  return [a, b];
}

export async function startRoguePeer(mode: RogueMode = 'ok', port = 0): Promise<RoguePeer> {
  let sent = 0;
  let calls = 0;
  let streams = 0;
  let streamCalls = 0;
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  const h2 = http2.createServer();
  h2.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined);
  });

  /** Writes chunks from `next` until it returns undefined or the client stops reading. */
  const pump = (stream: ServerHttp2Stream, next: () => Buffer | undefined, onDone?: () => void) => {
    const write = () => {
      while (!stream.destroyed && !stream.closed) {
        const chunk = next();
        if (!chunk) return onDone?.();
        sent += chunk.length;
        if (!stream.write(chunk)) return void stream.once('drain', write);
      }
    };
    write();
  };

  h2.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    if (path.startsWith('/grpc.health.v1.')) {
      stream.on('error', () => undefined);
      stream.respond({ ...GRPC, 'grpc-status': '12', 'grpc-message': 'unknown service grpc.health.v1.Health' }, { endStream: true });
      return;
    }
    if (path.endsWith('/Stream')) return serveStream(stream);
    calls++;
    stream.on('error', () => undefined);
    const body: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => body.push(chunk));
    stream.on('end', () => answer(stream, operands(Buffer.concat(body))));
  });

  const answer = (stream: ServerHttp2Stream, [a, b]: [number, number]) => {
    if (stream.destroyed) return;
    const chunk64k = Buffer.alloc(64 * 1024);
    switch (peer.mode) {
      case 'ok':
      case 'goaway':
        stream.respond(GRPC, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(resultMessage(a + b));
        if (peer.mode === 'goaway') stream.on('close', () => stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR));
        return;
      case 'oversized': {
        stream.respond(GRPC);
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(2 ** 30, 1);
        let first = true;
        pump(stream, () => (first ? ((first = false), Buffer.concat([prefix, chunk64k])) : chunk64k));
        return;
      }
      case 'max-message': {
        stream.respond(GRPC, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        // One length-delimited field 2 filling the whole message: valid protobuf, not a result.
        const length = peer.maxMessageBytes;
        const header = Buffer.alloc(5 + 1 + 5);
        header.writeUInt32BE(length, 1);
        header[5] = 0x12;
        let inner = length - 1 - 5;
        for (let i = 0; i < 5; i++, inner >>>= 7) header[6 + i] = (inner & 0x7f) | (i < 4 ? 0x80 : 0);
        let left = length - 6;
        let first = true;
        pump(stream, () => {
          if (first) return (first = false), header;
          if (left <= 0) return undefined;
          const size = Math.min(left, chunk64k.length);
          left -= size;
          return chunk64k.subarray(0, size);
        }, () => stream.end());
        return;
      }
      case 'endless': {
        stream.respond(GRPC);
        const message = resultMessage(a + b);
        const many = Buffer.concat(Array.from({ length: 4096 }, () => message));
        pump(stream, () => many);
        return;
      }
      case 'wrong-content-type':
        stream.respond({ ':status': 200, 'content-type': 'text/html' });
        stream.end('<html><body>Welcome to nginx!</body></html>');
        return;
      case 'http-500':
      case 'http-503':
      case 'http-404':
        stream.respond({ ':status': Number(peer.mode.slice(5)), 'content-type': 'text/plain' });
        stream.end('no');
        return;
      case 'rst-internal':
        stream.respond(GRPC);
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      case 'rst-refused':
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      case 'missing-trailers':
        stream.respond(GRPC);
        stream.end(resultMessage(a + b));
        return;
      case 'slow-drip': {
        stream.respond(GRPC, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        const message = resultMessage(a + b);
        let at = 0;
        const timer = setInterval(() => {
          if (stream.destroyed || stream.closed) return clearInterval(timer);
          if (at === message.length) {
            clearInterval(timer);
            return stream.end();
          }
          sent += 1;
          stream.write(message.subarray(at, ++at));
        }, 200);
        return;
      }
      case 'no-result-field': {
        stream.respond(GRPC, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        const frame = resultMessage(42);
        frame[5] = 0x11; // field 2, not field 1
        stream.end(frame);
        return;
      }
      case 'huge-message':
        stream.respond({ ...GRPC, 'grpc-status': '13', 'grpc-message': encodeURIComponent('é'.repeat(1_200)) }, { endStream: true });
        return;
      case 'claims-auth':
        stream.respond({ ...GRPC, 'grpc-status': '16', 'grpc-message': 'go away', 'calc-error-code': 'UNAUTHENTICATED' }, { endStream: true });
        return;
      case 'garbage-frames':
        return; // handled on the connection
    }
  };

  /** One Reply message with a result, framed. */
  const reply = (id: number, value: number) => frameReply({ id, result: value });

  const serveStream = (stream: ServerHttp2Stream) => {
    streams++;
    stream.on('error', () => undefined);
    const mode = peer.streamMode;
    switch (mode) {
      case 'unimplemented':
        // Like any server generated from the original proto, it serves no multiplexed Stream rpc.
        stream.respond({ ...GRPC, 'grpc-status': '12', 'grpc-message': 'unknown method Stream' }, { endStream: true });
        return;
      case 'wrong-content-type':
        stream.respond({ ':status': 200, 'content-type': 'text/html' });
        stream.end('<html><body>Welcome to nginx!</body></html>');
        return;
      case 'http-500':
      case 'http-503':
      case 'http-404':
        stream.respond({ ':status': Number(mode.slice(5)), 'content-type': 'text/plain' });
        stream.end('no');
        return;
      case 'rst-refused':
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
    }
    stream.respond(GRPC, { waitForTrailers: mode !== 'missing-trailers' });
    let trailers = '0';
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': trailers }));
    const reader = new FrameReader(64 * 1024);
    let first = true;
    stream.on('data', (chunk: Buffer) =>
      reader.push(chunk, (buffer, start, end) => {
        const call = decodeCall(buffer, start, end);
        if (call.cancel) return;
        streamCalls++;
        if (mode === 'ok') return void stream.write(reply(call.id, call.num1 + call.num2));
        // Replies that leave the stream open answer every Call so; the others end or flood the stream on the first.
        if (!first && mode !== 'no-result-field' && mode !== 'claims-auth') return;
        first = false;
        misbehave(stream, mode, call, (code) => (trailers = code));
      }),
    );
    stream.on('end', () => {
      if (mode === 'ok' && !stream.writableEnded) stream.end();
    });
  };

  const misbehave = (stream: ServerHttp2Stream, mode: StreamRogueMode, call: StreamCall, setTrailers: (code: string) => void) => {
    const chunk64k = Buffer.alloc(64 * 1024);
    switch (mode) {
      case 'oversized': {
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(2 ** 30, 1);
        let head = true;
        return pump(stream, () => (head ? ((head = false), Buffer.concat([prefix, chunk64k])) : chunk64k));
      }
      case 'unknown-ids': {
        const many = Buffer.concat(Array.from({ length: 4096 }, (_, i) => reply(call.id + 1_000_000 + i, 1)));
        return pump(stream, () => many);
      }
      case 'garbage-message':
        // A 2-byte message: a key with wire type 7, which protobuf does not have.
        return void stream.write(Buffer.from([0, 0, 0, 0, 2, 0x0f, 0x01]));
      case 'rst-internal':
        return void stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      case 'missing-trailers':
        return void stream.end(); // END_STREAM on DATA
      case 'ended-ok-unanswered':
        return void stream.end();
      case 'ended-internal':
        setTrailers('13');
        return void stream.end();
      case 'no-result-field': {
        // Field 1 (the id, a varint) alone: a Reply that says nothing of the call.
        const id: number[] = [0x08];
        for (let v = call.id; ; v >>>= 7) {
          if (v < 0x80) {
            id.push(v);
            break;
          }
          id.push((v & 0x7f) | 0x80);
        }
        const frame = Buffer.alloc(5);
        frame.writeUInt32BE(id.length, 1);
        return void stream.write(Buffer.concat([frame, Buffer.from(id)]));
      }
      case 'claims-auth':
        return void stream.write(frameReply({ id: call.id, code: 16, errorCode: 'UNAUTHENTICATED', message: 'go away' }));
      case 'slow-drip': {
        const message = reply(call.id, call.num1 + call.num2);
        let at = 0;
        const timer = setInterval(() => {
          if (stream.destroyed || stream.closed || at === message.length) return clearInterval(timer);
          sent += 1;
          stream.write(message.subarray(at, ++at));
        }, 200);
        return;
      }
      case 'goaway':
        stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
        stream.write(reply(call.id, call.num1 + call.num2));
        return void stream.end();
      case 'goaway-drop': {
        const session = stream.session;
        session?.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
        return void setImmediate(() => session?.destroy());
      }
    }
  };

  // A TCP front: garbage for 'garbage-frames', HTTP/2 for every other mode.
  const front: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (peer.mode === 'garbage-frames') {
      socket.once('data', () => {
        const garbage = Buffer.from('\x00\x00\x08\x07\x00\x00\x00\x00\x00HTTP/1.1 200 OK\r\n\r\n not frames at all');
        sent += garbage.length;
        socket.end(garbage);
      });
      return;
    }
    h2.emit('connection', socket);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(port, '127.0.0.1', () => resolve());
  });
  const address = front.address();
  const peer: RoguePeer = {
    target: `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    mode,
    streamMode: 'unimplemented',
    maxMessageBytes: 4 * 1024 * 1024,
    bytesSent: () => sent,
    calls: () => calls,
    streams: () => streams,
    streamCalls: () => streamCalls,
    async close() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      h2.close();
    },
  };
  return peer;
}
