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
  tracestate: string;
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

// Every varint written here is a uint32 field (ids, timeouts, codes, cancel, lengths): `uint32`
// brings a value into range first (clamped, so that a huge timeout stays huge), and the rest
// can then use 32-bit arithmetic.
const uint32 = (value: number) => (value >= 0xffffffff ? 0xffffffff : value > 0 ? Math.floor(value) : 0);

const varintSize = (value: number) => (value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5);

function writeVarint(buffer: Buffer, at: number, value: number): number {
  while (value > 0x7f) {
    buffer[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buffer[at++] = value;
  return at;
}

// Encoding in two passes, sizes then bytes, straight into the writer's slab: both ends of the
// hot path frame every call and every reply (several per expression in the evaluator).
const varintField = (value: number) => (value === 0 ? 0 : 1 + varintSize(value));
/** proto3 omits a zero double; -0 is kept so that its sign survives. */
const doubleField = (value: number) => (value !== 0 || Object.is(value, -0) ? 9 : 0);
const stringField = (bytes: number) => (bytes === 0 ? 0 : 1 + varintSize(bytes) + bytes);

function putVarint(frame: Buffer, at: number, field: number, value: number): number {
  if (value === 0) return at;
  frame[at++] = key(field, VARINT);
  return writeVarint(frame, at, value);
}

function putDouble(frame: Buffer, at: number, field: number, value: number, always = false): number {
  if (!always && doubleField(value) === 0) return at;
  frame[at++] = key(field, I64);
  return frame.writeDoubleLE(value, at);
}

function putString(frame: Buffer, at: number, field: number, text: string, bytes: number): number {
  if (bytes === 0) return at;
  frame[at++] = key(field, LEN);
  at = writeVarint(frame, at, bytes);
  return at + frame.write(text, at, bytes, 'utf8');
}

/**
 * Frames written one after another into one slab and handed out together: a batch of calls or
 * replies costs one allocation and one write, not one of each per message. What `take` returned
 * is never written over (later frames go after it, or into a new slab), so it may be handed to a
 * stream that writes it later.
 */
export class FrameWriter {
  private slab: Buffer | undefined;
  private start = 0;
  private end = 0;

  /** Nothing framed since the last `take`. */
  get empty(): boolean {
    return this.end === this.start;
  }

  /** The slab the frame `open` made room for is in. */
  get buffer(): Buffer {
    return this.slab!;
  }

  /** Writes a frame header (flag 0, big-endian length) for a message of `size` bytes; returns where the message goes in `buffer`. */
  open(size: number): number {
    const needed = 5 + size;
    if (!this.slab || this.end + needed > this.slab.length) {
      const pending = this.end - this.start;
      const next = Buffer.allocUnsafe(Math.max(SLAB_BYTES, pending + needed));
      this.slab?.copy(next, 0, this.start, this.end);
      this.slab = next;
      this.start = 0;
      this.end = pending;
    }
    this.slab[this.end] = 0;
    this.slab.writeUInt32BE(size, this.end + 1);
    this.end += needed;
    return this.end - size;
  }

  /** The frames written since the last call, as one buffer (undefined when there are none). */
  take(): Buffer | undefined {
    if (this.end === this.start) return undefined;
    const chunk = this.slab!.subarray(this.start, this.end);
    this.start = this.end;
    // An almost full slab is let go (the next frame starts a new one): a stream keeps at most one.
    if (this.slab!.length - this.end < 1024) this.clear();
    return chunk;
  }

  /** Lets go of the slab (what was framed and not taken is dropped). */
  clear(): void {
    this.slab = undefined;
    this.start = this.end = 0;
  }
}

const SLAB_BYTES = 16 * 1024;

/** A frame of its own (tests, and peers that write one message at a time). */
const single = (write: (writer: FrameWriter) => void): Buffer => {
  const writer = new FrameWriter();
  write(writer);
  return Buffer.from(writer.take()!);
};

export function frameCall(call: Partial<StreamCall> & { id: number }): Buffer {
  return single((writer) => writeCall(writer, call));
}

export function frameReply(reply: Partial<StreamReply> & { id: number }): Buffer {
  return single((writer) => writeReply(writer, reply));
}

/** Frames a Call into `writer`. */
export function writeCall(writer: FrameWriter, call: Partial<StreamCall> & { id: number }): void {
  const method = call.method ?? '';
  const expression = call.expression ?? '';
  const requestId = call.requestId ?? '';
  const traceparent = call.traceparent ?? '';
  const tracestate = call.tracestate ?? '';
  const num1 = call.num1 ?? 0;
  const num2 = call.num2 ?? 0;
  const id = uint32(call.id);
  const timeoutMs = uint32(call.timeoutMs ?? 0);
  const cancel = call.cancel ? 1 : 0;
  const methodBytes = utf8Bytes(method);
  const expressionBytes = utf8Bytes(expression);
  const requestIdBytes = utf8Bytes(requestId);
  const traceparentBytes = utf8Bytes(traceparent);
  const tracestateBytes = utf8Bytes(tracestate);
  const size = varintField(id) + stringField(methodBytes) + doubleField(num1) + doubleField(num2) + stringField(expressionBytes)
    + varintField(timeoutMs) + stringField(requestIdBytes) + stringField(traceparentBytes) + varintField(cancel) + stringField(tracestateBytes);
  let at = writer.open(size);
  const frame = writer.buffer;
  at = putVarint(frame, at, 1, id);
  at = putString(frame, at, 2, method, methodBytes);
  at = putDouble(frame, at, 3, num1);
  at = putDouble(frame, at, 4, num2);
  at = putString(frame, at, 5, expression, expressionBytes);
  at = putVarint(frame, at, 6, timeoutMs);
  at = putString(frame, at, 7, requestId, requestIdBytes);
  at = putString(frame, at, 8, traceparent, traceparentBytes);
  at = putVarint(frame, at, 9, cancel);
  putString(frame, at, 10, tracestate, tracestateBytes);
}

/** Frames a Reply into `writer`. */
export function writeReply(writer: FrameWriter, reply: Partial<StreamReply> & { id: number }): void {
  const id = uint32(reply.id);
  const code = uint32(reply.code ?? 0);
  const errorCode = reply.errorCode ?? '';
  const message = reply.message ?? '';
  const errorCodeBytes = utf8Bytes(errorCode);
  const messageBytes = utf8Bytes(message);
  // An answer carries its result even when it is 0 (explicit presence): a Reply with neither a
  // result nor a status is refused by the caller as malformed, not read as 0.
  const hasResult = !code;
  const size = varintField(id) + (hasResult ? 9 : 0) + varintField(code) + stringField(errorCodeBytes) + stringField(messageBytes);
  let at = writer.open(size);
  const frame = writer.buffer;
  at = putVarint(frame, at, 1, id);
  if (hasResult) at = putDouble(frame, at, 2, reply.result ?? 0, true);
  at = putVarint(frame, at, 3, code);
  at = putString(frame, at, 4, errorCode, errorCodeBytes);
  putString(frame, at, 5, message, messageBytes);
}

/**
 * UTF-8 length; the empty strings of absent fields cost nothing. (Not a charCodeAt loop: the
 * strings met here come in several representations (literals, decoded, sliced headers), and a
 * loop over them was measured ~8x slower than over literals alone.)
 */
const utf8Bytes = (text: string) => (text.length === 0 ? 0 : Buffer.byteLength(text, 'utf8'));

// Decoding without allocating per field: `cursor` is where the last read ended, `limit` where the message ends.
let cursor = 0;
let limit = 0;

function readVarint(buffer: Buffer, at: number): number {
  if (at >= limit) throw new Error('truncated varint');
  const first = buffer[at]!;
  if (first < 0x80) {
    cursor = at + 1;
    return first;
  }
  return readLongVarint(buffer, at);
}

function readLongVarint(buffer: Buffer, at: number): number {
  let value = 0;
  for (let scale = 1; scale < 2 ** 35; scale *= 128) {
    if (at >= limit) throw new Error('truncated varint');
    const byte = buffer[at++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      cursor = at;
      return value >>> 0 === value ? value : value % 2 ** 32;
    }
  }
  // A 64-bit varint (a negative or huge number): keep its low 32 bits, as a uint32 field does.
  while (at < limit && buffer[at++]! >= 0x80);
  cursor = at;
  return value % 2 ** 32;
}

/** Skips a field of a wire type this message does not use for it; throws on a truncated or unknown one. */
function skipField(message: Buffer, wireType: number, at: number): number {
  if (wireType === VARINT) {
    readVarint(message, at);
    return cursor;
  }
  if (wireType === I64) {
    readDouble(message, at);
    return cursor;
  }
  if (wireType === LEN) {
    lengthDelimited(message, at);
    return cursor;
  }
  if (wireType === I32) return at + 4;
  throw new Error(`unsupported wire type ${wireType}`);
}

/** The [start, end) of a length-delimited field whose length starts at `at`; `cursor` is set to `end`. */
function lengthDelimited(message: Buffer, at: number): number {
  const length = readVarint(message, at);
  const start = cursor;
  if (start + length > limit) throw new Error('truncated length-delimited field');
  cursor = start + length;
  return start;
}

function readDouble(message: Buffer, at: number): number {
  if (at + 8 > limit) throw new Error('truncated 64-bit field');
  cursor = at + 8;
  return message.readDoubleLE(at);
}

/** The Call in `buffer[start, end)` (by default the whole buffer). */
export function decodeCall(buffer: Buffer, start = 0, end = buffer.length): StreamCall {
  const call: StreamCall = { id: 0, method: '', num1: 0, num2: 0, expression: '', timeoutMs: 0, requestId: '', traceparent: '', cancel: false, tracestate: '' };
  limit = end;
  let at = start;
  while (at < end) {
    const k = readVarint(buffer, at);
    at = cursor;
    const field = k >>> 3;
    const wireType = k & 7;
    if (wireType === VARINT && (field === 1 || field === 6 || field === 9)) {
      const value = readVarint(buffer, at);
      if (field === 1) call.id = value;
      else if (field === 6) call.timeoutMs = value;
      else call.cancel = value !== 0;
      at = cursor;
    } else if (wireType === I64 && (field === 3 || field === 4)) {
      const value = readDouble(buffer, at);
      if (field === 3) call.num1 = value;
      else call.num2 = value;
      at = cursor;
    } else if (wireType === LEN && (field === 2 || field === 5 || field === 7 || field === 8 || field === 10)) {
      const from = lengthDelimited(buffer, at);
      const text = buffer.toString(undefined, from, cursor); // utf8; an undefined encoding skips the lookup of one (~90 ns a field)
      if (field === 2) call.method = text;
      else if (field === 5) call.expression = text;
      else if (field === 7) call.requestId = text;
      else if (field === 8) call.traceparent = text;
      else call.tracestate = text;
      at = cursor;
    } else at = skipField(buffer, wireType, at);
  }
  if (at > end) throw new Error('truncated message');
  return call;
}

/** The Reply in `buffer[start, end)` (by default the whole buffer). */
export function decodeReply(buffer: Buffer, start = 0, end = buffer.length): DecodedReply {
  const reply: DecodedReply = { id: 0, result: 0, code: 0, errorCode: '', message: '', hasResult: false };
  limit = end;
  let at = start;
  while (at < end) {
    const k = readVarint(buffer, at);
    at = cursor;
    const field = k >>> 3;
    const wireType = k & 7;
    if (wireType === VARINT && (field === 1 || field === 3)) {
      const value = readVarint(buffer, at);
      if (field === 1) reply.id = value;
      else reply.code = value;
      at = cursor;
    } else if (wireType === I64 && field === 2) {
      reply.result = readDouble(buffer, at);
      reply.hasResult = true;
      at = cursor;
    } else if (wireType === LEN && (field === 4 || field === 5)) {
      const from = lengthDelimited(buffer, at);
      const text = buffer.toString(undefined, from, cursor); // utf8; an undefined encoding skips the lookup of one (~90 ns a field)
      if (field === 4) reply.errorCode = text;
      else reply.message = text;
      at = cursor;
    } else at = skipField(buffer, wireType, at);
  }
  if (at > end) throw new Error('truncated message');
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

  /** Calls `onMessage(buffer, start, end)` for every complete message in `chunk` (and what came before it). */
  push(chunk: Buffer, onMessage: (buffer: Buffer, start: number, end: number) => void): void {
    const buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    while (buffer.length - at >= 5) {
      if (buffer[at] !== 0) throw new FramingError('compressed message (no compression was negotiated)');
      const length = buffer.readUInt32BE(at + 1);
      if (length > this.maxMessageBytes) throw new FramingError(`message of ${length} bytes exceeds the limit of ${this.maxMessageBytes}`);
      if (buffer.length - at - 5 < length) break;
      onMessage(buffer, at + 5, at + 5 + length);
      at += 5 + length;
    }
    if (at < buffer.length) this.pending = at === 0 ? buffer : Buffer.from(buffer.subarray(at));
  }
}
