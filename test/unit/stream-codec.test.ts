import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCall, decodeReply, FrameReader, FramingError, frameCall, frameReply } from '../../src/upstream/stream-codec.js';

test('when a Call and a Reply are framed and decoded, then every field comes back (negative zero and unicode included)', () => {
  const call = { id: 4_000_000_000, method: 'Divide', num1: -0, num2: 1e-300, expression: '√ 2 · 3', timeoutMs: 1500, requestId: 'r-1', traceparent: '00-abc-def-01', cancel: true };
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
  for (let at = 0; at < frames.length; at += 7) reader.push(frames.subarray(at, at + 7), (m) => ids.push(decodeReply(m).id));
  assert.deepEqual(ids, [1, 2, 3]);
});

test('when a frame announces more than the limit or is compressed, then the reader refuses it before buffering it', () => {
  const header = Buffer.from([0, 0, 0x10, 0, 0]); // 1 MiB announced
  assert.throws(() => new FrameReader(64 * 1024).push(header, () => undefined), FramingError);
  assert.throws(() => new FrameReader(1024).push(Buffer.from([1, 0, 0, 0, 1, 0]), () => undefined), /compressed/);
});
