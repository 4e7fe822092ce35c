import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCall, decodeReply, FrameReader, FramingError, FrameWriter, frameCall, frameReply, writeCall, writeReply } from '../../src/upstream/stream-codec.js';
import { loadProto } from '../../src/shared/proto.js';

test('when a Call and a Reply are framed and decoded, then every field comes back (negative zero and unicode included)', () => {
  const call = { id: 4_000_000_000, method: 'Divide', num1: -0, num2: 1e-300, expression: '√ 2 · 3', timeoutMs: 1500, requestId: 'r-1', traceparent: '00-abc-def-01', cancel: true, tracestate: 'vendor=abc' };
  const frame = frameCall(call);
  assert.equal(frame.readUInt32BE(1), frame.length - 5);
  const back = decodeCall(frame.subarray(5));
  assert.deepEqual(back, call);
  assert.ok(Object.is(back.num1, -0));
  const reply = { id: 7, result: 3.5, code: 9, errorCode: 'DOMAIN_ERROR', message: 'division by zero' };
  assert.deepEqual(decodeReply(frameReply(reply).subarray(5)), { ...reply, result: 0, hasResult: false }, 'an error Reply carries no result');
  const answer = { id: 7, result: 3.5, code: 0, errorCode: '', message: '' };
  assert.deepEqual(decodeReply(frameReply(answer).subarray(5)), { ...answer, hasResult: true });
  assert.deepEqual(decodeReply(frameReply({ id: 1 }).subarray(5)), { id: 1, result: 0, code: 0, errorCode: '', message: '', hasResult: true }, 'a result of 0 is on the wire');
  assert.deepEqual(decodeReply(Buffer.from([0x08, 0x01])), { id: 1, result: 0, code: 0, errorCode: '', message: '', hasResult: false }, 'an id alone answers nothing');
});

test('when frames arrive split and joined across chunks, then the reader yields each message once, whole', () => {
  const frames = Buffer.concat([frameReply({ id: 1, result: 1 }), frameReply({ id: 2, message: 'x'.repeat(300) }), frameReply({ id: 3 })]);
  const reader = new FrameReader(1024);
  const ids: number[] = [];
  for (let at = 0; at < frames.length; at += 7) reader.push(frames.subarray(at, at + 7), (buffer, start, end) => ids.push(decodeReply(buffer, start, end).id));
  assert.deepEqual(ids, [1, 2, 3]);
});

test('when a frame announces more than the limit or is compressed, then the reader refuses it before buffering it', () => {
  const header = Buffer.from([0, 0, 0x10, 0, 0]); // 1 MiB announced
  assert.throws(() => new FrameReader(64 * 1024).push(header, () => undefined), FramingError);
  assert.throws(() => new FrameReader(1024).push(Buffer.from([1, 0, 0, 0, 1, 0]), () => undefined), /compressed/);
});

/** protobufjs (through the proto loader, as grpc-js uses it): the reference encoder and decoder of Call and Reply. */
function reference() {
  const stream = (loadProto().Calculator.service as unknown as Record<string, { requestSerialize(v: object): Buffer; requestDeserialize(b: Buffer): Record<string, unknown>; responseSerialize(v: object): Buffer; responseDeserialize(b: Buffer): Record<string, unknown> }>).Stream!;
  return stream;
}

/** A small deterministic generator, so that a failure names its seed. */
function random(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const text = () => pick(['', 'Add', 'Evaluate', 'r-1', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '√ 2 · 3', '😀'.repeat(40), 'x'.repeat(200)]);
  const number = () => pick([0, -0, 1, -1.5, 1e-300, 1e300, Number.MAX_SAFE_INTEGER, Math.PI, next() * 1e6 - 5e5]);
  const uint = () => pick([0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 - 1, Math.floor(next() * 2 ** 32)]);
  return { next, pick, text, number, uint };
}

test('when Calls and Replies are framed here and by protobufjs, then each decodes the other\'s bytes to the same message (2,000 random ones)', () => {
  const ref = reference();
  for (let seed = 1; seed <= 1000; seed++) {
    const r = random(seed);
    const call = { id: r.uint(), method: r.text(), num1: r.number(), num2: r.number(), expression: r.text(), timeoutMs: r.uint(), requestId: r.text(), traceparent: r.text(), cancel: r.next() < 0.2, tracestate: r.text() };
    const theirs = ref.requestDeserialize(frameCall(call).subarray(5));
    assert.deepEqual({ ...theirs, num1: Object.is(theirs.num1, -0) ? '-0' : theirs.num1 }, {
      id: call.id, method: call.method, num1: Object.is(call.num1, -0) ? '-0' : call.num1, num2: call.num2, expression: call.expression,
      timeout_ms: call.timeoutMs, request_id: call.requestId, traceparent: call.traceparent, cancel: call.cancel, tracestate: call.tracestate,
    }, `Call, seed ${seed}`);
    const ours = decodeCall(ref.requestSerialize({ id: call.id, method: call.method, num1: call.num1, num2: call.num2, expression: call.expression, timeout_ms: call.timeoutMs, request_id: call.requestId, traceparent: call.traceparent, cancel: call.cancel, tracestate: call.tracestate }));
    assert.deepEqual(ours, { ...call, num1: ours.num1 }, `Call back, seed ${seed}`);

    const failed = r.next() < 0.5;
    const reply = failed ? { id: r.uint(), result: 0, code: 1 + Math.floor(r.next() * 16), errorCode: r.text(), message: r.text() } : { id: r.uint(), result: r.number(), code: 0, errorCode: '', message: '' };
    const theirReply = ref.responseDeserialize(frameReply(reply).subarray(5));
    assert.deepEqual({ ...theirReply, result: Object.is(theirReply.result, -0) ? 0 : theirReply.result }, {
      id: reply.id, result: Object.is(reply.result, -0) ? 0 : reply.result, code: reply.code, error_code: reply.errorCode, message: reply.message,
    }, `Reply, seed ${seed}`);
    const back = decodeReply(ref.responseSerialize({ id: reply.id, result: reply.result, code: reply.code, error_code: reply.errorCode, message: reply.message }));
    // protobufjs omits a result of 0 (proto3): then no result is on the wire.
    assert.deepEqual({ ...back, hasResult: undefined, result: back.result }, { ...reply, hasResult: undefined, result: doubleOnWire(reply.result) ? reply.result : 0 }, `Reply back, seed ${seed}`);
  }
});

const doubleOnWire = (value: number) => value !== 0 || Object.is(value, -0);

test('when a message is cut anywhere, then decoding either throws or yields fields, never reads past the end', () => {
  const call = frameCall({ id: 300, method: 'Evaluate', expression: '(6+7)*3', num1: 1.5, timeoutMs: 900, requestId: 'req', traceparent: 'tp' }).subarray(5);
  for (let end = 0; end < call.length; end++) {
    const cut = Buffer.from(call.subarray(0, end));
    try {
      const decoded = decodeCall(cut);
      assert.ok(decoded.expression.length <= '(6+7)*3'.length);
    } catch (error) {
      assert.match((error as Error).message, /truncated/, `cut at ${end}`);
    }
  }
});

test('when a message is decoded inside a larger buffer, then only its own bytes are read', () => {
  const call = frameCall({ id: 9, method: 'Add', num1: 6, num2: 7, requestId: 'r-9' }).subarray(5);
  // Trailing bytes that would be a field (id 1 = 5) if they were read.
  const padded = Buffer.concat([Buffer.from([0x08, 0x02]), call, Buffer.from([0x08, 0x05])]);
  assert.deepEqual(decodeCall(padded, 2, 2 + call.length), decodeCall(call));
  assert.throws(() => decodeCall(padded, 2, 2 + call.length - 1), /truncated/);
  const reply = frameReply({ id: 300, result: 13 }).subarray(5);
  const inside = Buffer.concat([Buffer.from([0xff]), reply, Buffer.from([0x08, 0x05])]);
  assert.deepEqual(decodeReply(inside, 1, 1 + reply.length), { id: 300, result: 13, code: 0, errorCode: '', message: '', hasResult: true });
});

test('when frames are written into a FrameWriter, then each take hands out the frames since the last one, and later frames never overwrite them', () => {
  const writer = new FrameWriter();
  assert.equal(writer.take(), undefined);
  writeCall(writer, { id: 1, method: 'Add', num1: 1, num2: 2 });
  writeReply(writer, { id: 2, result: 3 });
  const first = writer.take()!;
  const firstCopy = Buffer.from(first);
  assert.deepEqual(first, Buffer.concat([frameCall({ id: 1, method: 'Add', num1: 1, num2: 2 }), frameReply({ id: 2, result: 3 })]));
  assert.ok(writer.empty);
  // Enough frames to fill the slab several times over, some larger than a slab.
  const expected: Buffer[] = [];
  for (let i = 0; i < 400; i++) {
    const call = { id: 10 + i, method: 'Evaluate', expression: 'x'.repeat(i % 7 === 0 ? 20_000 : 100) };
    writeCall(writer, call);
    expected.push(frameCall(call));
    if (i % 50 === 49) assert.deepEqual(writer.take(), Buffer.concat(expected.splice(0)));
  }
  assert.deepEqual(first, firstCopy, 'the first chunk is unchanged');
  const ids: number[] = [];
  new FrameReader(64 * 1024).push(Buffer.concat([first]), (buffer, start, end) => ids.push(decodeCall(buffer, start, end).id));
  assert.deepEqual(ids, [1, 2]);
});

test('when a varint field is given a value outside uint32, then it is clamped into range, never written as a different number', () => {
  const call = decodeCall(frameCall({ id: 4_294_967_295, timeoutMs: 2 ** 40 }).subarray(5));
  assert.equal(call.id, 4_294_967_295);
  assert.equal(call.timeoutMs, 0xffffffff, 'a huge timeout stays the largest one, not its low bits');
  assert.equal(decodeCall(frameCall({ id: 7, timeoutMs: -5 }).subarray(5)).timeoutMs, 0);
  assert.equal(decodeCall(frameCall({ id: 7, timeoutMs: 1.7 }).subarray(5)).timeoutMs, 1);
  for (const value of [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455, 268_435_456, 2 ** 31, 2 ** 32 - 1]) {
    assert.equal(decodeReply(frameReply({ id: value, result: 1 }).subarray(5)).id, value, `id ${value}`);
  }
});
