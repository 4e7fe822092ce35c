/**
 * A misbehaving gRPC peer: a plain node:http2 server that answers `calculator.Calculator` calls
 * the way broken, hostile or foreign servers do. One `mode` at a time, changeable between calls;
 * `bytesSent` counts what it managed to write, so a test can tell how much it pushed.
 */
import http2, { type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';

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

export interface RoguePeer {
  readonly target: string;
  mode: RogueMode;
  /** The client's receive limit, for 'max-message'. */
  maxMessageBytes: number;
  readonly bytesSent: () => number;
  readonly calls: () => number;
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

  h2.on('stream', (stream, _headers) => {
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
    maxMessageBytes: 4 * 1024 * 1024,
    bytesSent: () => sent,
    calls: () => calls,
    async close() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      h2.close();
    },
  };
  return peer;
}
