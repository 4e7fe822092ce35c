import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResult, frameEvaluateRequest, frameOperationRequest } from '../../src/upstream/codec.js';

test('when a request is framed, then it is the gRPC prefix and the original field numbers', () => {
  const frame = frameOperationRequest(6, 7);
  assert.equal(frame[0], 0);
  assert.equal(frame.readUInt32BE(1), 18);
  assert.deepEqual([frame[5], frame.readDoubleLE(6), frame[14], frame.readDoubleLE(15)], [0x09, 6, 0x11, 7]);
  const text = frameEvaluateRequest('1+'.repeat(100) + '1');
  assert.equal(text.readUInt32BE(1), text.length - 5);
  assert.deepEqual([text[5], text[6], text[7]], [0x0a, 201 & 0x7f | 0x80, 1], 'a two-byte varint length');
});

test('when a reply is decoded, then absent is zero, unknown fields are skipped, and the last value wins', () => {
  const double = (field: number, value: number) => {
    const b = Buffer.alloc(9);
    b[0] = (field << 3) | 1;
    b.writeDoubleLE(value, 1);
    return b;
  };
  assert.equal(decodeResult(Buffer.alloc(0)), 0);
  assert.equal(decodeResult(double(1, 13)), 13);
  const unknown = Buffer.concat([Buffer.from([(7 << 3) | 0, 0x96, 0x01]), Buffer.from([(8 << 3) | 2, 2, 0x41, 0x42]), double(9, 1), double(1, 2.5)]);
  assert.equal(decodeResult(unknown), 2.5);
  assert.equal(decodeResult(Buffer.concat([double(1, 1), double(1, -4)])), -4);
  assert.throws(() => decodeResult(Buffer.from([0x09, 1, 2])), /truncated/);
});
