/**
 * The messages of the multiplexed `Stream` rpc (`Call`, `Reply` in proto/calculator.proto) and
 * the gRPC message framing of a long-lived stream, by hand like codec.ts: both ends of the hot
 * path encode and decode them once per call. Decoding follows the protobuf rules a generated
 * decoder does (any field order, last value wins, unknown fields skipped, absent fields zero),
 * so grpc-js, grpcio or any generated peer interoperates.
 */

/** One call on the stream, as the caller sends it. `cancel` withdraws an earlier call of the same id. */
export interface StreamCall {
  id: number;
  method: string;
  num1: number;
  num2: number;
  expression: string;
  /** Time the caller still waits, relative (two hosts' clocks differ); 0 means no deadline. */
  timeoutMs: number;
  requestId: string;
  traceparent: string;
  cancel: boolean;
}

/** The answer to one call: `code` 0 and `result`, or a gRPC status, the calcmesh code and a message. */
export interface StreamReply {
  id: number;
  result: number;
  code: number;
  errorCode: string;
  message: string;
}

/** A decoded Reply, and whether field 2 was on the wire (a Reply with code 0 and no result answers nothing). */
export interface DecodedReply extends StreamReply {
  hasResult: boolean;
}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
const key = (field: number, wireType: number) => (field << 3) | wireType;

function varintSize(value: number): number {
  let size = 1;
  while (value > 0x7f) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(buffer: Buffer, at: number, value: number): number {
  while (value > 0x7f) {
    buffer[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  buffer[at++] = value;
  return at;
}

/** Encodes fields into one gRPC frame (flag 0, big-endian length, message) in a single allocation. */
class FrameWriter {
  private size = 0;
  private readonly parts: Array<[number, number, number | string]> = [];

  varint(field: number, value: number): this {
    if (value !== 0) {
      this.parts.push([field, VARINT, value]);
      this.size += 1 + varintSize(value);
    }
    return this;
  }

  double(field: number, value: number): this {
    // proto3 omits a zero; -0 is kept so that its sign survives.
    if (value !== 0 || Object.is(value, -0)) {
      this.parts.push([field, I64, value]);
      this.size += 9;
    }
    return this;
  }

  /** A double written even when it is 0 (a field with presence). */
  explicitDouble(field: number, value: number): this {
    this.parts.push([field, I64, value]);
    this.size += 9;
    return this;
  }

  string(field: number, value: string): this {
    if (value.length > 0) {
      const bytes = Buffer.byteLength(value, 'utf8');
      this.parts.push([field, LEN, value]);
      this.size += 1 + varintSize(bytes) + bytes;
    }
    return this;
  }

  finish(): Buffer {
    const frame = Buffer.allocUnsafe(5 + this.size);
    frame[0] = 0;
    frame.writeUInt32BE(this.size, 1);
    let at = 5;
    for (const [field, wireType, value] of this.parts) {
      frame[at++] = key(field, wireType);
      if (wireType === VARINT) at = writeVarint(frame, at, value as number);
      else if (wireType === I64) at = frame.writeDoubleLE(value as number, at);
      else {
        const text = value as string;
        at = writeVarint(frame, at, Buffer.byteLength(text, 'utf8'));
        at += frame.write(text, at, 'utf8');
      }
    }
    return frame;
  }
}

export function frameCall(call: Partial<StreamCall> & { id: number }): Buffer {
  return new FrameWriter()
    .varint(1, call.id)
    .string(2, call.method ?? '')
    .double(3, call.num1 ?? 0)
    .double(4, call.num2 ?? 0)
    .string(5, call.expression ?? '')
    .varint(6, call.timeoutMs ?? 0)
    .string(7, call.requestId ?? '')
    .string(8, call.traceparent ?? '')
    .varint(9, call.cancel ? 1 : 0)
    .finish();
}

export function frameReply(reply: Partial<StreamReply> & { id: number }): Buffer {
  const writer = new FrameWriter().varint(1, reply.id);
  // An answer carries its result even when it is 0 (explicit presence): a Reply with neither a
  // result nor a status is refused by the caller as malformed, not read as 0.
  if (!reply.code) writer.explicitDouble(2, reply.result ?? 0);
  return writer
    .varint(3, reply.code ?? 0)
    .string(4, reply.errorCode ?? '')
    .string(5, reply.message ?? '')
    .finish();
}

function readVarint(buffer: Buffer, at: number): [number, number] {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at >= buffer.length) throw new Error('truncated varint');
    const byte = buffer[at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value >>> 0 === value ? value : value % 2 ** 32, at];
  }
  // A 64-bit varint (a negative or huge number): keep its low 32 bits, as a uint32 field does.
  while (at < buffer.length && buffer[at++]! >= 0x80);
  return [value % 2 ** 32, at];
}

/**
 * Walks the fields of one message and hands each known one to `visit`: a varint as a number,
 * a 64-bit field as a double, a length-delimited one as its [start, end) range.
 */
function eachField(message: Buffer, visit: (field: number, wireType: number, value: number, end: number) => void): void {
  let at = 0;
  while (at < message.length) {
    const [k, afterKey] = readVarint(message, at);
    at = afterKey;
    const field = k >>> 3;
    const wireType = k & 7;
    if (wireType === VARINT) {
      const [value, next] = readVarint(message, at);
      visit(field, wireType, value, next);
      at = next;
    } else if (wireType === I64) {
      if (at + 8 > message.length) throw new Error('truncated 64-bit field');
      visit(field, wireType, message.readDoubleLE(at), at + 8);
      at += 8;
    } else if (wireType === LEN) {
      const [length, start] = readVarint(message, at);
      if (start + length > message.length) throw new Error('truncated length-delimited field');
      visit(field, wireType, start, start + length);
      at = start + length;
    } else if (wireType === I32) at += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
  if (at > message.length) throw new Error('truncated message');
}

export function decodeCall(message: Buffer): StreamCall {
  const call: StreamCall = { id: 0, method: '', num1: 0, num2: 0, expression: '', timeoutMs: 0, requestId: '', traceparent: '', cancel: false };
  eachField(message, (field, wireType, value, end) => {
    const text = () => message.toString('utf8', value, end);
    if (wireType === VARINT) {
      if (field === 1) call.id = value;
      else if (field === 6) call.timeoutMs = value;
      else if (field === 9) call.cancel = value !== 0;
    } else if (wireType === I64) {
      if (field === 3) call.num1 = value;
      else if (field === 4) call.num2 = value;
    } else if (wireType === LEN) {
      if (field === 2) call.method = text();
      else if (field === 5) call.expression = text();
      else if (field === 7) call.requestId = text();
      else if (field === 8) call.traceparent = text();
    }
  });
  return call;
}

export function decodeReply(message: Buffer): DecodedReply {
  const reply: DecodedReply = { id: 0, result: 0, code: 0, errorCode: '', message: '', hasResult: false };
  eachField(message, (field, wireType, value, end) => {
    if (wireType === VARINT) {
      if (field === 1) reply.id = value;
      else if (field === 3) reply.code = value;
    } else if (wireType === I64 && field === 2) {
      reply.result = value;
      reply.hasResult = true;
    }
    else if (wireType === LEN) {
      if (field === 4) reply.errorCode = message.toString('utf8', value, end);
      else if (field === 5) reply.message = message.toString('utf8', value, end);
    }
  });
  return reply;
}

/** A peer broke the framing rules of the stream (oversized, compressed or malformed message). */
export class FramingError extends Error {}

/**
 * Cuts the DATA of a stream into gRPC messages. It holds at most one message in part, and
 * refuses one whose declared length exceeds `maxMessageBytes` before buffering any of it, so a
 * peer cannot make it buffer without bound.
 */
export class FrameReader {
  private pending: Buffer | undefined;

  constructor(private readonly maxMessageBytes: number) {}

  /** Calls `onMessage` for every complete message in `chunk` (and what came before it). */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    const buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    while (buffer.length - at >= 5) {
      if (buffer[at] !== 0) throw new FramingError('compressed message (no compression was negotiated)');
      const length = buffer.readUInt32BE(at + 1);
      if (length > this.maxMessageBytes) throw new FramingError(`message of ${length} bytes exceeds the limit of ${this.maxMessageBytes}`);
      if (buffer.length - at - 5 < length) break;
      onMessage(buffer.subarray(at + 5, at + 5 + length));
      at += 5 + length;
    }
    if (at < buffer.length) this.pending = at === 0 ? buffer : Buffer.from(buffer.subarray(at));
  }
}
