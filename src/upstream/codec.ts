/**
 * Protobuf encoding of calcmesh's four messages, by hand: they are fixed and tiny (two doubles,
 * one double, one string), and the hot path should not build objects to send them. Decoding
 * follows the protobuf rules a generated decoder does: fields in any order, a repeated scalar
 * field keeps its last value, unknown fields are skipped. An empty message is proto3's encoding of
 * a result of 0; a message that has bytes but no field 1 is not a result at all (a peer answering
 * another message type, or garbage) and is refused rather than read as 0.
 */
import { DEFAULTS } from '../shared/config.js';

/** The default receive limit of one message, as grpc-js's (4 MiB): CALC_GRPC_MAX_MESSAGE_BYTES's default. */
export const DEFAULT_MAX_MESSAGE_BYTES = DEFAULTS.CALC_GRPC_MAX_MESSAGE_BYTES;

const DOUBLE_1 = (1 << 3) | 1; // field 1, wire type 1 (64-bit)
const DOUBLE_2 = (2 << 3) | 1;
const STRING_1 = (1 << 3) | 2; // field 1, wire type 2 (length-delimited)

/** A gRPC message frame: compression flag 0, big-endian length, then the message. */
export function frameOperationRequest(num1: number, num2: number): Buffer {
  const frame = Buffer.allocUnsafe(5 + 18);
  frame[0] = 0;
  frame.writeUInt32BE(18, 1);
  frame[5] = DOUBLE_1;
  frame.writeDoubleLE(num1, 6);
  frame[14] = DOUBLE_2;
  frame.writeDoubleLE(num2, 15);
  return frame;
}

export function frameEvaluateRequest(expression: string): Buffer {
  const text = Buffer.from(expression, 'utf8');
  const length = varint(text.length);
  const size = 1 + length.length + text.length;
  const frame = Buffer.allocUnsafe(5 + size);
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  frame[5] = STRING_1;
  length.copy(frame, 6);
  text.copy(frame, 6 + length.length);
  return frame;
}

/** `{ double result = 1; }` (OperationResponse and EvaluateResponse alike). */
export function decodeResult(message: Buffer): number {
  let result = 0;
  let seen = false;
  let at = 0;
  while (at < message.length) {
    const [key, afterKey] = readVarint(message, at);
    at = afterKey;
    const wireType = key & 7;
    if (key === DOUBLE_1) {
      if (at + 8 > message.length) throw new Error('truncated double');
      result = message.readDoubleLE(at);
      seen = true;
      at += 8;
    } else if (wireType === 0) at = readVarint(message, at)[1];
    else if (wireType === 1) at += 8;
    else if (wireType === 2) {
      const [length, afterLength] = readVarint(message, at);
      at = afterLength + length;
    } else if (wireType === 5) at += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
  if (at > message.length) throw new Error('truncated message');
  if (!seen && message.length > 0) throw new Error('no result field (field 1) in a non-empty message');
  return result;
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

function readVarint(buffer: Buffer, at: number): [number, number] {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at >= buffer.length) throw new Error('truncated varint');
    const byte = buffer[at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, at];
  }
  // A 64-bit varint (a negative int64 field we do not know): skip its remaining bytes.
  while (at < buffer.length && buffer[at++]! >= 0x80);
  return [value, at];
}
